"""The traced process's end of the wire: one thread owns the PUSH socket and sends batches.

Tracing threads only append tuples to :attr:`Publisher.buffer` (and definitions
to :attr:`Publisher.defs`); list appends are atomic under the GIL, so the hot
path takes no lock.  The sender thread wakes every ``interval`` seconds (or
when a tracing thread finds the buffer full), slices off what is there and
sends it as one message.

Nothing is dropped while a receiver is connected: at the high-water mark the
send blocks, the buffer fills, and the tracing threads wait for room
(back-pressure).  The socket is ``ZMQ_IMMEDIATE``: messages are queued only
for a live connection, so what waits for an absent receiver is ours to count.
With no receiver for longer than ``patience`` seconds (remote mode), events
are given up on and counted in :attr:`lost` until one connects, so the
program runs on; definitions and the start of the run are kept and sent
first.  At the end the wait is bounded by ``flush_timeout``.
"""

import logging
import os
import threading
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from smiley_like.wire import codec

LOG = logging.getLogger(__name__)


class Publisher:
    """Batches events from the tracer and pushes them to a monitor or a private writer."""

    def __init__(self, endpoint, run_id, *, interval=0.05, max_buffered=65536, hwm=64,
                 patience=None, peer_alive=None, on_tick=None, wait_for_receiver=None):
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
        self.patience = patience  # seconds to wait for an absent receiver; None: forever
        self.connected = False
        self.ever_connected = False
        self.cut_short = False  # the receiver was still taking messages at the flush timeout
        self._peer_alive = peer_alive or (lambda: True)
        self._on_tick = on_tick
        self._wait_for_receiver = wait_for_receiver
        self._batch = 0
        self._seq = 0
        self._wake = threading.Event()
        self._room = threading.Event()
        self._start = None  # the start message, until it is sent
        self._defs_waiting = []  # definitions of events given up on: sent with the next batch
        self._dropping = False
        self._events_socket = None
        self._end = None
        self._deadline = None
        self._thread = None
        self._socket = None
        self.thread_idents = set()  # our own threads: the tracer must skip them
        self.error = None

    # -- called from the traced program's threads ----------------------------

    def start(self, run_info):
        self._start = codec.encode_start(self.run_id, self.pid, run_info)
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
        socket.setsockopt(zmq.IMMEDIATE, 1)  # queue only for a live connection
        self._socket = socket
        linger = 0
        try:
            self._events_socket = socket.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
            socket.connect(self.endpoint)
            while self._end is None:
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._on_tick is not None:
                    self._on_tick()
                self._flush()
            self._flush()
            self.lost += len(self.buffer)
            end = dict(self._end, sent=self.sent, lost=self.lost)
            if self._send_start() and self._writable():
                socket.send_multipart(codec.encode_end(self.run_id, self.pid,
                                                       self._next_batch(), end), copy=True)
            if self._wait_for_receiver is not None:
                # The receiver says when it has everything (a private writer exits).
                self._wait_for_receiver()
                linger = 0
            else:
                linger = 0 if self._deadline is None else \
                    max(0, int((self._deadline - time.monotonic()) * 1000))
        except Exception as exc:  # never let our failure reach the program
            self.error = exc
            self.lost += len(self.buffer)
            linger = 0
        finally:
            self._room.set()
            if self._events_socket is not None:
                socket.disable_monitor()
                self._events_socket.close(linger=0)
            socket.close(linger=linger)
            started = time.monotonic()
            context.term()  # returns when queued messages are gone, or at the linger time
            if linger and time.monotonic() - started >= linger / 1000 * 0.9:
                self.cut_short = True  # some may have been discarded when time ran out

    def _next_batch(self):
        self._batch += 1
        return self._batch

    def _flush(self):
        # Events first, then definitions: every definition an event refers to
        # was appended before that event, so it is in this slice or an earlier one.
        count = len(self.buffer)
        n_defs = len(self.defs)
        if not count and not n_defs:
            if self._start is not None and self._socket.poll(0, zmq.POLLOUT):
                self._send_start()  # a receiver came: tell it about the run now
            return
        events = self.buffer[:count]
        del self.buffer[:count]
        self._defs_waiting.extend(self.defs[:n_defs])
        del self.defs[:n_defs]
        self._room.set()
        seq = self._seq
        self._seq += count  # given up on or not: the receiver sees the gap
        if not (self._send_start() and self._writable()):
            self.lost += count
            return
        frames = codec.encode_events(self.run_id, self.pid, self._next_batch(), seq,
                                     self._defs_waiting, events)
        self._defs_waiting = []
        # copy=True: zero-copy sends use pyzmq's gc thread, which stops at interpreter exit.
        self._socket.send_multipart(frames, copy=True)
        self.sent += count

    def _send_start(self):
        """Send the start of the run if it has not gone yet; False if we gave up waiting."""
        if self._start is None:
            return True
        if not self._writable():
            return False
        self._socket.send_multipart(self._start, copy=True)
        self._start = None
        return True

    def _writable(self):
        """Wait until the socket takes a message; False when we give up on it.

        While a receiver is connected we wait as long as it takes
        (back-pressure).  Without one, we wait ``patience`` seconds, then give
        up at once on every message until one connects; a dead private writer
        or the flush deadline also end the wait.  After True, the next send
        does not block: this thread is the socket's only user.
        """
        socket = self._socket
        absent_since = None
        while True:
            self._watch_connection()
            dropping = self._dropping and not self.connected
            if socket.poll(0 if dropping else 100, zmq.POLLOUT):
                # Room on an IMMEDIATE socket means a live connection, whether or
                # not the socket monitor's report of it has come in yet.
                self.connected = self.ever_connected = True
                self._dropping = False
                return True
            now = time.monotonic()
            if not self._peer_alive() or (self._deadline is not None and now > self._deadline):
                return False
            if self.connected:
                absent_since = None
                self._dropping = False
            elif self.patience is not None:
                if self._dropping:
                    return False
                absent_since = absent_since or now
                if now - absent_since >= self.patience:
                    self._dropping = True
                    return False

    def _watch_connection(self):
        events = self._events_socket
        while events.poll(0):
            event = recv_monitor_message(events)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = self.ever_connected = True
            elif event == zmq.EVENT_DISCONNECTED:
                self.connected = False
