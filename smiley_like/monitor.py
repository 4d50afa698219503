"""The receiving loop: listener -> decoded messages -> sinks.

Sinks have three methods, ``start(message, info)``, ``batch(batch)`` and
``end(message, info)``; the store writer is one, the console printer another.
Run as ``python -m smiley_like.monitor --private ...`` this module is the
private writer that ``smiley-like run`` starts in local mode.
"""

import argparse
import dataclasses
import gc
import logging
import os
import signal
import sys

import zmq

from smiley_like.errors import SmileyError, WireError
from smiley_like.wire import codec
from smiley_like.wire.listener import Listener

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Batch:
    """One message's worth of events, decoded, with the packed bytes as received."""

    message: codec.Message
    defs: list
    events: list
    packed: bytes


class Monitor:
    """Decodes what the listener receives and hands it to every sink."""

    def __init__(self, listener, sinks):
        self.listener = listener
        self.sinks = sinks
        self.rejected = 0  # messages that were not ours
        self._rejected_from = set()

    def handle(self, frames):
        """Dispatch one message; return it, or None if it was rejected."""
        try:
            message = codec.decode(frames)
            if message.kind == "events":
                batch = Batch(message, codec.decode_list(message.payload[0]),
                              codec.decode_list(message.payload[1]), message.payload[1])
                for sink in self.sinks:
                    sink.batch(batch)
            else:
                info = codec.decode_map(message.payload[0])
                for sink in self.sinks:
                    getattr(sink, message.kind)(message, info)
            return message
        except WireError as error:
            self._reject(frames, str(error))
        except (TypeError, IndexError, KeyError, ValueError) as error:
            self._reject(frames, f"malformed batch: {type(error).__name__}: {error}")
        return None

    def _reject(self, frames, reason):
        self.rejected += 1
        sender = _sender_of(frames)
        if sender not in self._rejected_from:
            self._rejected_from.add(sender)
            LOG.warning("ignoring a message that is not ours (from %s): %s", sender, reason)


def _sender_of(frames):
    """Best guess at who sent *frames*, for logging once per sender."""
    try:
        header = codec.unpack(bytes(frames[1]))
        return f"run {header['run']} pid {header['pid']}"
    except Exception:
        return "an unknown sender"


def _serve_private(args):
    """Store one run for the `run` command in our parent process; exit when it ends."""
    from smiley_like import config
    from smiley_like.store.engine import open_store
    from smiley_like.store.writer import StoreWriter

    try:
        store = open_store(args.database, create=True,
                           busy_timeout=config.load().busy_timeout)
        store.check_writable()
        listener = Listener(args.socket)
    except SmileyError as error:
        print(f"error {error}", flush=True)
        return 2
    print(f"ready {listener.endpoint}", flush=True)
    writer = StoreWriter(store)
    # Every batch decodes into tens of thousands of short-lived lists, which
    # the default thresholds make the collector walk again and again: a
    # quarter of the writer's time.  Its long-lived objects are frozen out of
    # collections and collections are rarer; the few cycles (SQLAlchemy's)
    # are still collected.
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)
    monitor = Monitor(listener, [writer])
    poller = zmq.Poller()
    poller.register(listener.socket, zmq.POLLIN)
    poller.register(sys.stdin.fileno(), zmq.POLLIN)
    stored = 0

    def handle(frames):
        nonlocal stored
        message = monitor.handle(frames)
        if message is not None and message.kind == "events":
            stored += message.header["count"]
        return message

    try:
        while True:
            ready = dict(poller.poll())
            if listener.socket in ready:
                message = handle(listener.socket.recv_multipart())
                if message is not None and message.kind == "end" and message.run_id == args.run:
                    break
            elif ready:
                # End of file on stdin: the traced process is gone, or gave up sending.
                while (frames := listener.receive(100)) is not None:
                    handle(frames)
                writer.abandon(args.run, "the traced process ended without finishing the run "
                                         "(killed, or crashed)")
                break
    except SmileyError as error:
        sys.stderr.write(f"smiley-like: writer: {error}\n")
        return 2
    finally:
        listener.close()
        store.close()
        _remove_socket_dir(args.socket)
    try:
        print(f"stored {stored}", flush=True)
    except BrokenPipeError:  # the traced process is gone; the database says it all
        pass
    return 0


def _remove_socket_dir(endpoint):
    """Remove the private ipc socket and its temporary directory (the run process may be gone)."""
    if not endpoint.startswith("ipc://"):
        return
    path = endpoint[len("ipc://"):]
    directory = os.path.dirname(path)
    if os.path.basename(directory).startswith("smiley-like-"):
        for remove in (os.unlink, os.rmdir):
            try:
                remove(path if remove is os.unlink else directory)
            except OSError:
                pass


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m smiley_like.monitor")
    parser.add_argument("--private", action="store_true", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--run", required=True)
    args = parser.parse_args(argv)
    # Ctrl-C is for the traced program; we stop when it has ended.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(format="smiley-like: writer: %(message)s", level=logging.WARNING)
    return _serve_private(args)


if __name__ == "__main__":
    sys.exit(main())
