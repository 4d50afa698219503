"""The traced process's end of the wire: one thread owns the PUSH socket and sends batches.

Tracing threads only append tuples to :attr:`Publisher.buffer` (and definitions
to :attr:`Publisher.defs`); list appends are atomic under the GIL, so the hot
path takes no lock.  The C tracer writes its events, packed already, to
:attr:`Publisher.packed` instead, an ``EventBuffer`` that it writes each
event to whole under the GIL.  The sender thread wakes every ``interval`` seconds (or
when a tracing thread finds the buffer full), slices off what is there and
puts it in its outbox as one batch, then sends what the socket will take.

The socket is ``ZMQ_IMMEDIATE``: messages are queued only for a live
connection, so whatever waits for an absent receiver waits in the outbox,
where it is ours to count.  The outbox holds up to ``max_buffered`` events;
past that the sender waits for the socket, and so, once their buffer is full
too, do the tracing threads (back-pressure).  While a receiver is connected
that wait has no limit: nothing is dropped.  With no receiver for
``patience`` seconds (remote mode), batches are given up on and counted in
:attr:`lost` until one connects, so the program runs on; the start of the run
and every definition are kept, and a receiver that connects later (a monitor
started late, or restarted) is sent them first.  At the end the wait is
bounded by ``flush_timeout``.
"""

import collections
import logging
import os
import threading
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from smiley_like.wire import codec

LOG = logging.getLogger(__name__)

#: Seconds an idle run waits before it sends an empty batch, so that a monitor
#: can tell a program that is blocked from one that is gone.
KEEPALIVE = 1.0


class Publisher:
    """Batches events from the tracer and pushes them to a monitor or a private writer."""

    def __init__(self, endpoint, run_id, *, interval=0.05, max_buffered=65536, hwm=64,
                 patience=None, peer_alive=None, on_tick=None, wait_for_receiver=None):
        self._options = dict(interval=interval, max_buffered=max_buffered, hwm=hwm,
                             patience=patience, peer_alive=peer_alive, on_tick=on_tick,
                             wait_for_receiver=wait_for_receiver)
        self.endpoint = endpoint
        self.run_id = run_id
        self.pid = os.getpid()
        self.interval = interval
        self.max_buffered = max_buffered
        self.hwm = hwm
        self.buffer = []  # event tuples (the Python tracer)
        self.packed = None  # or an EventBuffer the C tracer packs events into
        self.defs = []
        self.sent = 0  # events handed to ZeroMQ
        self.lost = 0  # events we had to give up on
        self.patience = patience  # seconds to wait for an absent receiver; None: forever
        self.connected = False
        self.ever_connected = False
        self.cut_short = 0  # events possibly discarded when the flush timeout ran out
        self._peer_alive = peer_alive or (lambda: True)
        self._on_tick = on_tick
        self._wait_for_receiver = wait_for_receiver
        self._batch = 0
        self._seq = 0
        self._wake = threading.Event()
        self._room = threading.Event()
        self._start = None  # the start message, sent first to every receiver
        self._started = threading.Event()  # set once the sender has tried to send it
        self._introduced = False  # the receiver connected now has had the start and defs
        self._outbox = collections.deque()  # (seq, events) not sent yet, oldest first
        self._outbox_events = 0
        self._defs_waiting = []  # definitions not sent yet
        self._all_defs = []  # every definition, for a receiver that connects later
        self._recent = collections.deque(maxlen=2 * hwm)  # event counts of the last messages
        self._last_send = time.monotonic()
        self._dropping = False
        self._events_socket = None
        self._end = None
        self._deadline = None
        self._thread = None
        self._socket = None
        self.thread_idents = set()  # our own threads: the tracer must skip them
        self.error = None

    # -- called from the traced program's threads ----------------------------

    def start(self, run_info, wait=0.0):
        """Start the sender thread; wait up to *wait* seconds for the start message to go.

        (So that a program killed in its first milliseconds still leaves its
        run behind, when a receiver is there to take it.)
        """
        self._start = codec.encode_start(self.run_id, self.pid, run_info)
        self._thread = threading.Thread(target=self._run, name="smiley-like-publisher",
                                        daemon=True)
        self._thread.smiley_like_own = True  # known before it runs: the tracer skips it
        self._thread.start()
        self.thread_idents.add(self._thread.ident)
        self._started.wait(wait)

    def waiting(self):
        """The number of events the tracers have added that the sender has not taken."""
        return len(self.buffer) + (len(self.packed) if self.packed is not None else 0)

    def _drop_waiting(self):
        del self.buffer[:]
        if self.packed is not None:
            self.packed.clear()

    def wait_for_room(self):
        """Block a tracing thread until the sender has taken the buffer (back-pressure)."""
        while self.waiting() > self.max_buffered:
            if not self._thread.is_alive():  # no sender any more: count, do not grow
                self.lost += self.waiting()
                self._drop_waiting()
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
        if self._thread is not None and self._thread.ident is not None:  # started
            self._thread.join(None if timeout is None else timeout + 1.0)

    def abandon(self):
        """Forget everything: used in a forked child, where the sender thread does not exist."""
        self.lost = 0
        self._drop_waiting()
        del self.defs[:]

    def known_defs(self):
        """Every definition handed to us so far, sent or not."""
        return self._all_defs + self.defs

    def restart_in_child(self, run_id, defs, **options):
        """In a forked child: become a new, unstarted publisher for *run_id*.

        The parent's socket, context and thread are not ours to touch (ZeroMQ
        contexts do not survive a fork); they are left alone, and :meth:`start`
        makes new ones.  The tracers hold on to :attr:`buffer`, :attr:`packed`
        and :attr:`defs`, so those are kept and emptied: what they held is the
        parent's to send.  *defs* are the definitions the child's events may
        refer to (sent first); *options* replace constructor options.
        """
        buffer, packed, pending = self.buffer, self.packed, self.defs
        self.__init__(self.endpoint, run_id, **dict(self._options, **options))
        del buffer[:]
        if packed is not None:
            packed.clear()
        pending[:] = defs
        self.buffer, self.packed, self.defs = buffer, packed, pending

    # -- the sender thread -------------------------------------------------

    def _run(self):
        context = zmq.Context()
        socket = context.socket(zmq.PUSH)
        # Options before connect: the high-water mark is ignored for existing connections.
        socket.setsockopt(zmq.SNDHWM, self.hwm)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.IMMEDIATE, 1)  # queue only for a live connection
        socket.setsockopt(zmq.HEARTBEAT_IVL, 1000)  # notice a receiver that vanished unseen
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
        self._socket = socket
        linger = 0
        try:
            self._events_socket = socket.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
            socket.connect(self.endpoint)
            # Tell the receiver about the run at once: a program killed in its first
            # milliseconds still leaves a run behind.
            if socket.poll(1000, zmq.POLLOUT):
                self._mark_connected()
                self._introduce()
            self._started.set()
            while self._end is None:
                self._wake.wait(self.interval)
                self._wake.clear()
                self._tick()
                self._flush()
                self._keep_alive()
            self._flush(final=True)
            self.lost += self.waiting()
            end = dict(self._end, sent=self.sent, lost=self.lost)
            if self._introduce() and self._writable():
                socket.send_multipart(codec.encode_end(self.run_id, self.pid,
                                                       self._next_batch(), end), copy=True)
                self._recent.append(0)
            if self._wait_for_receiver is not None:
                # The receiver says when it has everything (a private writer exits).
                self._wait_for_receiver()
            elif self._deadline is not None:
                linger = max(0, int((self._deadline - time.monotonic()) * 1000))
        except Exception as exc:  # never let our failure reach the program
            self.error = exc
            self.lost += self.waiting() + self._outbox_events
        finally:
            self._started.set()
            self._room.set()
            if self._events_socket is not None:
                socket.disable_monitor()
                self._events_socket.close(linger=0)
            socket.close(linger=linger)
            started = time.monotonic()
            context.term()  # returns when queued messages are gone, or at the linger time
            if self._deadline is not None and self.connected and \
                    time.monotonic() - started >= linger / 1000 * 0.9:
                # Time ran out with messages possibly still queued for the receiver.
                self.cut_short = sum(self._recent)

    def _keep_alive(self):
        """An idle run sends an empty batch now and then: the monitor knows it is alive."""
        if time.monotonic() - self._last_send >= KEEPALIVE and self._introduced \
                and not self._outbox and self._socket.poll(0, zmq.POLLOUT):
            self._send_events(self._seq, [])

    def _tick(self):
        if self._on_tick is not None:
            self._on_tick()

    def _next_batch(self):
        self._batch += 1
        return self._batch

    def _flush(self, final=False):
        """Move the buffers into the outbox as one batch each; send what the socket takes.

        A run's events are in one buffer, the tuples or the packed ones,
        except in a forked child, whose first events (its open frames) are
        tuples that come before anything its C tracer packs.
        """
        # Events first, then definitions: every definition an event refers to
        # was appended before that event, so it is in this slice or an earlier one.
        batches = [self.buffer[:]]
        del self.buffer[:len(batches[0])]
        if self.packed is not None and len(self.packed):
            batches.append(codec.PackedEvents(*self.packed.take()))
        n_defs = len(self.defs)
        defs = self.defs[:n_defs]
        # Kept first, then taken: a fork in between still finds them (known_defs).
        self._all_defs += defs
        del self.defs[:n_defs]
        self._room.set()
        self._defs_waiting += defs
        for events in batches:
            if len(events):
                self._outbox.append((self._seq, events))
                self._outbox_events += len(events)
                self._seq += len(events)  # sent or given up on: the receiver sees any gap
        self._deliver(final)

    def _deliver(self, final):
        """Send from the outbox, oldest first, as long as the socket takes it at once.

        When the outbox holds more than ``max_buffered`` events (or at the
        end), wait for the socket as :meth:`_writable` says; if it gives up,
        the newest batches are given up on until the outbox fits.
        """
        self._watch_connection()
        while self._outbox or self._defs_waiting or not self._introduced:
            pressed = final or self._outbox_events > self.max_buffered
            if not self._ready(wait=pressed):
                if not (pressed and self._outbox):
                    return
                seq, events = self._outbox.pop()  # given up on: the newest batch
                self._outbox_events -= len(events)
                self.lost += len(events)
                continue
            if not self._introduce():
                return
            seq, events = self._outbox.popleft() if self._outbox else (self._seq, [])
            self._outbox_events -= len(events)
            self._send_events(seq, events)

    def _ready(self, wait):
        """True if the socket takes a message now; with *wait*, by :meth:`_writable`'s rules."""
        if wait:
            return self._writable()
        if self._socket.poll(0, zmq.POLLOUT):
            self._mark_connected()
            return True
        return False

    def _introduce(self):
        """Send the start of the run (and, next, every definition) to a new receiver."""
        if self._introduced:
            return True
        if not self._writable():
            return False
        self._socket.send_multipart(self._start, copy=True)
        self._recent.append(0)
        self._defs_waiting = list(self._all_defs)
        self._introduced = True
        return True

    def _send_events(self, seq, events):
        count = len(events)
        try:
            frames = codec.encode_events(self.run_id, self.pid, self._next_batch(), seq,
                                         self._defs_waiting, events)
            # copy=True: zero-copy sends use pyzmq's gc thread, which stops at exit.
            self._socket.send_multipart(frames, copy=True)
        except Exception:
            self.lost += count
            raise
        self._defs_waiting = []
        self.sent += count
        self._recent.append(count)
        self._last_send = time.monotonic()

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
                self._mark_connected()
                return True
            self._tick()  # the repr watchdog keeps its time while we wait
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

    def _mark_connected(self):
        # Room on an IMMEDIATE socket means a live connection, whether or not
        # the socket monitor's report of it has come in yet.
        self.connected = self.ever_connected = True
        self._dropping = False

    def _watch_connection(self):
        events = self._events_socket
        while events.poll(0):
            event = recv_monitor_message(events)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = self.ever_connected = True
            elif event == zmq.EVENT_DISCONNECTED:
                # The next receiver may be a new monitor: it gets the start and the
                # definitions again (a receiver that has them ignores repeats).
                self.connected = self._introduced = False
