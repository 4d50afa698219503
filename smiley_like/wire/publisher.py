"""The traced process's end of the wire: one thread owns the PUSH socket and sends batches.

Tracing threads only append tuples to :attr:`Publisher.buffer` (and definitions
to :attr:`Publisher.defs`); list appends are atomic under the GIL, so the hot
path takes no lock.  The sender thread wakes every ``interval`` seconds (or
when a tracing thread finds the buffer full), slices off what is there and
sends it as one message.

Nothing is dropped while the receiver is alive: at the high-water mark the
send blocks, the buffer fills, and the tracing threads wait for room.  At the
end the wait is bounded by ``flush_timeout``; whatever could not be sent is
counted in :attr:`lost`.
"""

import logging
import os
import threading
import time

import zmq

from smiley_like.wire import codec

LOG = logging.getLogger(__name__)


class Publisher:
    """Batches events from the tracer and pushes them to a monitor or a private writer."""

    def __init__(self, endpoint, run_id, *, interval=0.05, max_buffered=65536, hwm=64,
                 peer_alive=None, on_tick=None, wait_for_receiver=None):
        self.endpoint = endpoint
        self.run_id = run_id
        self.pid = os.getpid()
        self.interval = interval
        self.max_buffered = max_buffered
        self.hwm = hwm
        self.buffer = []
        self.defs = []
        self.sent = 0  # events handed to ZeroMQ
        self.lost = 0  # events we had to give up on
        self._peer_alive = peer_alive or (lambda: True)
        self._on_tick = on_tick
        self._wait_for_receiver = wait_for_receiver
        self._batch = 0
        self._seq = 0
        self._wake = threading.Event()
        self._room = threading.Event()
        self._outbox = []
        self._end = None
        self._deadline = None
        self._thread = None
        self._socket = None
        self.thread_idents = set()  # our own threads: the tracer must skip them
        self.error = None

    # -- called from the traced program's threads ----------------------------

    def start(self, run_info):
        self._outbox.append(codec.encode_start(self.run_id, self.pid, run_info))
        self._thread = threading.Thread(target=self._run, name="smiley-like-publisher",
                                        daemon=True)
        self._thread.start()
        self.thread_idents.add(self._thread.ident)

    def wait_for_room(self):
        """Block a tracing thread until the sender has taken the buffer (back-pressure)."""
        while len(self.buffer) > self.max_buffered:
            if not self._thread.is_alive():  # no sender any more: count, do not grow
                self.lost += len(self.buffer)
                del self.buffer[:]
                return
            self._room.clear()
            self._wake.set()
            self._room.wait(0.5)

    def close(self, end_info, timeout):
        """Send what is left and the end of the run.

        With a *timeout*, give up delivering after that many seconds; with
        None, wait as long as the receiver is alive (local mode).
        """
        self._end = end_info
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
        self._wake.set()
        if self._thread is not None:
            self._thread.join(None if timeout is None else timeout + 1.0)

    def abandon(self):
        """Forget everything: used in a forked child, where the sender thread does not exist."""
        self.lost = 0
        del self.buffer[:]
        del self.defs[:]

    # -- the sender thread -------------------------------------------------

    def _run(self):
        context = zmq.Context()
        socket = context.socket(zmq.PUSH)
        # Options before connect: the high-water mark is ignored for existing connections.
        socket.setsockopt(zmq.SNDHWM, self.hwm)
        socket.setsockopt(zmq.LINGER, 0)
        self._socket = socket
        try:
            socket.connect(self.endpoint)
            while self._outbox:
                self._send(self._outbox.pop(0), 0)
            while self._end is None:
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._on_tick is not None:
                    self._on_tick()
                self._flush()
            self._flush()
            self.lost += len(self.buffer)
            end = dict(self._end, sent=self.sent, lost=self.lost)
            self._send(codec.encode_end(self.run_id, self.pid, self._next_batch(), end), 0)
            if self._wait_for_receiver is not None:
                # The receiver says when it has everything (a private writer exits).
                self._wait_for_receiver()
                socket.close(linger=0)
            else:
                remaining = 0 if self._deadline is None else \
                    max(0, int((self._deadline - time.monotonic()) * 1000))
                socket.close(linger=remaining)
        except Exception as exc:  # never let our failure reach the program
            self.error = exc
            self.lost += len(self.buffer)
            socket.close(linger=0)
        finally:
            self._room.set()
            context.term()

    def _next_batch(self):
        self._batch += 1
        return self._batch

    def _flush(self):
        # Events first, then definitions: every definition an event refers to
        # was appended before that event, so it is in this slice or an earlier one.
        count = len(self.buffer)
        n_defs = len(self.defs)
        if not count and not n_defs:
            return
        events = self.buffer[:count]
        del self.buffer[:count]
        defs = self.defs[:n_defs]
        del self.defs[:n_defs]
        self._room.set()
        frames = codec.encode_events(self.run_id, self.pid, self._next_batch(), self._seq,
                                     defs, events)
        self._seq += count
        self._send(frames, count)

    def _send(self, frames, count):
        # Wait for room, then send the whole message: a NOBLOCK send can fail
        # after some frames went out, and a retry would splice two messages.
        # This thread is the socket's only user, so after POLLOUT it will not block.
        socket = self._socket
        while not socket.poll(100, zmq.POLLOUT):
            if not self._peer_alive() or (
                    self._deadline is not None and time.monotonic() > self._deadline):
                self.lost += count
                return False
        # copy=True: zero-copy sends use pyzmq's gc thread, which stops at interpreter exit.
        socket.send_multipart(frames, copy=True)
        self.sent += count
        return True
