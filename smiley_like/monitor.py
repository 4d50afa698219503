"""The receiving loop: listener -> decoded messages -> sinks.

Sinks have three methods, ``start(message, info)``, ``batch(batch)`` and
``end(message, info)``; the store writer is one, the live printer another.
:func:`watch` is the ``smiley-like monitor`` command's loop.  Run as
``python -m smiley_like.monitor --private ...`` this module is the private
writer that ``smiley-like run`` starts in local mode.
"""

import argparse
import collections
import contextlib
import dataclasses
import functools
import gc
import logging
import os
import signal
import sys
import time

import zmq

from smiley_like.errors import SmileyError, WireError
from smiley_like.tracer.follow import process_gone
from smiley_like.wire import codec
from smiley_like.wire.listener import Listener

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Batch:
    """One message's worth of events: the packed bytes as received, decoded when asked.

    The store writer reads the bytes (see :func:`smiley_like.store.writer.scan`),
    and rejects a batch it cannot decode; only sinks after it that look at
    the events themselves pay for decoding them.
    """

    message: codec.Message
    defs: list
    packed: bytes
    # Filled in by the store writer for the sinks after it:
    stacks: dict | None = None  # each thread's open frames at the batch's start
    # thread_no -> (code_id, line_no, open frames) at its last event; the
    # thread of the batch's last event comes last:
    where: dict | None = None

    @functools.cached_property
    def events(self):
        return codec.decode_list(self.packed)


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
                              message.payload[1])
                for sink in self.sinks:
                    sink.batch(batch)
            else:
                info = codec.decode_map(message.payload[0])
                for sink in self.sinks:
                    getattr(sink, message.kind)(message, info)
            return message
        except WireError as error:
            self._reject(frames, str(error))
        except (TypeError, IndexError, KeyError, ValueError, ArithmeticError,
                AttributeError) as error:
            self._reject(frames, f"malformed batch: {type(error).__name__}: {error}")
        return None

    def _reject(self, frames, reason):
        self.rejected += 1
        sender = _sender_of(frames)
        if sender not in self._rejected_from and len(self._rejected_from) < 1000:
            self._rejected_from.add(sender)
            LOG.warning("ignoring a message that is not ours (from %s): %s", sender, reason)


def quiet_collector():
    """Tune the garbage collector for a process that stores batches.

    Every batch decodes into tens of thousands of short-lived lists, which the
    default thresholds make the collector walk again and again: a quarter of
    a writer's time.  Long-lived objects are frozen out of collections and
    collections are rarer; the few cycles (SQLAlchemy's) are still collected.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)


def watch(listener, store, printer, *, stderr=sys.stderr, drain_time=2.0, lost_after=30.0):
    """Store and show what arrives until SIGINT or SIGTERM; return the exit status.

    On a signal it stores what its socket has queued already (for at most
    *drain_time* seconds), stops taking messages, and marks the runs still
    open as interrupted.  A run it hears nothing from (not even the empty
    batches an idle sender sends every second) for *lost_after* seconds is
    marked interrupted too: its program was killed, or its host is cut off.
    A locked database holds the monitor back (see
    :class:`~smiley_like.store.writer.StoreWriter`); nothing is dropped.
    """
    from smiley_like.store.writer import StoreWriter

    writer = StoreWriter(store)
    quiet_collector()
    monitor = Monitor(listener, [writer, printer])
    stopping = []

    def stop(number, frame):
        stopping.append(number)
        # A locked database must not keep us: what it refuses now is counted, not retried
        # (this also frees the receiving thread if it waits for room in the store queue).
        writer.give_up_when_busy()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    heard = {}  # run_id -> when we last heard from it
    next_check = time.monotonic() + 1.0
    try:
        while not stopping:
            frames = listener.receive(200)
            if frames is not None:
                message = monitor.handle(frames)
                if message is not None:
                    if message.kind == "end":
                        heard.pop(message.run_id, None)
                    else:
                        heard[message.run_id] = time.monotonic()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 1.0
                silent = [run_id for run_id, when in heard.items()
                          if time.monotonic() - when > lost_after]
                for run_id in silent:
                    del heard[run_id]
                if silent:
                    reason = f"nothing heard from it for {lost_after:g} s"
                    printer.interrupted(writer.interrupt(
                        f"the monitor heard nothing from the program for {lost_after:g} s "
                        "(killed, or cut off)", silent), reason)
        # What is queued here already was received: store it, for a bounded time.
        deadline = time.monotonic() + drain_time
        while time.monotonic() < deadline and (frames := listener.receive(0)) is not None:
            monitor.handle(frames)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listener.close()  # stop taking messages; what is stored stays stored
        writer.give_up_when_busy()
        try:
            printer.interrupted(writer.interrupt("the monitor stopped while the run was "
                                                 "being recorded"), "the monitor stopped")
        finally:
            writer.close()
            printer.close()
    if writer.unstored:
        stderr.write(f"smiley-like: {writer.unstored} events could not be stored (see the "
                     "messages above)\n")
    if monitor.rejected:
        stderr.write(f"smiley-like: ignored {monitor.rejected} messages that were not "
                     "smiley-like batches\n")
    return 0


def _sender_of(frames):
    """Best guess at who sent *frames*, for logging once per sender."""
    try:
        header = codec.unpack(bytes(frames[1]))
        return f"run {header['run']} pid {header['pid']}"
    except Exception:
        return "an unknown sender"


def _serve_private(args):
    """Store one run for the `run` command in our parent process, with its child processes.

    Prints ``ready ENDPOINT`` once it listens, ``started`` once the run's
    start is stored, and ``stored N`` (the events of the parent's own
    process) once the parent's end is stored or the parent is gone.  Then it
    goes on while child processes of the run are still recording, and stops
    when every one has ended or is gone (checked by pid: they are on this
    host).
    """
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
    quiet_collector()
    monitor = Monitor(listener, [writer])
    poller = zmq.Poller()
    poller.register(listener.socket, zmq.POLLIN)
    poller.register(sys.stdin.fileno(), zmq.POLLIN)
    stored = 0
    pids = {}  # run_id -> pid, of every process heard from
    started = collections.defaultdict(set)  # pid -> ids of the runs that started in it
    process_starts = {}  # run_id -> its process's start time (a reused pid is not it)
    expected = {}  # pid -> (give up at, run that expects it): children not heard from yet
    parent_done = False

    def say(line):
        try:
            print(line, flush=True)
        except (BrokenPipeError, ValueError):  # the traced process is gone; the database says it all
            pass

    def handle(frames):
        nonlocal stored
        message = monitor.handle(frames)
        if message is None:
            return
        pids[message.run_id] = message.pid
        if message.kind == "start":
            started[message.pid].add(message.run_id)
            with contextlib.suppress(WireError):
                begun = codec.decode_map(message.payload[0]).get("process_start")
                if type(begun) is int:
                    process_starts[message.run_id] = begun
        elif message.kind == "end":
            expect_children(message)
        if message.run_id != args.run:
            return
        if message.kind == "events":
            stored += message.header["count"]
        elif message.kind == "start":
            writer.flush()
            say("started")  # the run is in the database: it cannot vanish now
        elif message.kind == "end":
            parent_ended()

    def expect_children(message):
        """An ending process names its live children: wait a while for those not heard from."""
        try:
            listed = codec.decode_map(message.payload[0]).get("expect")
        except WireError:
            return
        if not isinstance(listed, list):
            return
        for pid in listed[:10_000]:
            if type(pid) is int and not started[pid] - {message.run_id}:
                expected[pid] = (time.monotonic() + EXPECT_CHILD_FOR, message.run_id)

    def waiting_for_children():
        now = time.monotonic()
        for pid, (give_up, ender) in list(expected.items()):
            if started[pid] - {ender} or now > give_up or process_gone(pid):
                del expected[pid]
        return bool(expected)

    def parent_ended():
        nonlocal parent_done
        writer.flush()
        parent_done = True
        poller.unregister(sys.stdin.fileno())
        say(f"stored {stored}")

    def drain():
        while (frames := listener.receive(100)) is not None:
            handle(frames)

    def children_open():
        return [run_id for run_id in writer.runs if run_id != args.run]

    try:
        next_check = time.monotonic() + 0.5
        while not parent_done or children_open() or waiting_for_children():
            ready = dict(poller.poll(500))
            if listener.socket in ready:
                handle(listener.socket.recv_multipart())
            elif ready:
                # End of file on stdin: the traced process is gone, or gave up sending.
                drain()
                if not parent_done:
                    writer.abandon(args.run, "the traced process ended without finishing the "
                                             "run (killed, or crashed)")
                    parent_ended()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                gone = [run_id for run_id in children_open()
                        if pids.get(run_id) is None
                        or process_gone(pids[run_id], process_starts.get(run_id))]
                if gone:
                    drain()  # what they sent before they went
                    for run_id in gone:
                        if run_id in writer.runs:
                            writer.abandon(run_id, "the process ended without finishing its "
                                                   "recording (killed, or crashed)")
        writer.flush()
    except SmileyError as error:
        sys.stderr.write(f"smiley-like: writer: {error}\n")
        return 2
    finally:
        writer.close()
        listener.close()
        store.close()
        _remove_socket_dir(args.socket)
    return 0


#: Seconds the private writer waits for a child process an ending process named, to
#: hear from it (a child of Python starts recording within milliseconds; other
#: programs never do).
EXPECT_CHILD_FOR = 10.0


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
