"""Storing what arrives on the wire: one message, one transaction.

The writer keeps, per run, each thread's call stack, so that every stored
chunk can say which frames were open at its start; readers rebuild call ids,
parents and depths from there without reading what came before.

A run it has not seen start (a monitor started late, or restarted) is picked
up where the database left it: stacks, counts and the next sequence number
come from its last stored chunk.  Sequence numbers that skip ahead are events
that never arrived; they are counted in the run's ``lost_events`` at once,
and settled from the sender's own counts when the run ends.
"""

import collections
import dataclasses
import itertools
import json
import logging
import operator
import queue
import threading
import time

import sqlalchemy
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smiley_like.errors import StoreBusy, StoreError
from smiley_like.events import CALL, EXCEPTION, LINE, RETURN
from smiley_like.store import compression, schema
from smiley_like.wire import codec

try:
    from smiley_like.store._scan import walk_packed as _walk_packed
except ImportError:  # not built: no compiler at install time, or another Python
    _walk_packed = None

LOG = logging.getLogger(__name__)

_kind = operator.itemgetter(0)
_thread = operator.itemgetter(1)



def clean(text):
    """Text that SQLite can store: lone surrogates become U+FFFD."""
    if text is None:
        return None
    return str(text).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@dataclasses.dataclass
class _RunState:
    """What the writer remembers about a run while it is being recorded."""

    stacks: dict = dataclasses.field(default_factory=dict)  # thread_no -> [[call_id, code_id]]
    threads: dict = dataclasses.field(default_factory=dict)  # thread_no -> stats dict
    event_count: int = 0  # events stored, by this writer and earlier ones
    next_seq: int = 0  # the sequence number the next batch should start at
    missing: int = 0  # events skipped by the sequence numbers so far
    reopen: bool = False  # marked interrupted by a monitor that stopped: running again


def walk(stacks, seq, events):
    """Advance *stacks* over *events*; return (codes seen, per-thread stats) for a chunk.

    Stats are {thread_no: [count, first_seq, last_seq, first_ns, last_ns,
    code_id]}, the code id being that of the frame of the thread's last event.
    A stack entry is [call_id, code_id], plus the type of the last exception
    seen in that frame, so a frame left by an exception can name it even when
    its return is in a later chunk.

    Line events, most of any run, move no stack: only the others are looked
    at one by one here; the rest is done by C-level list operations.
    """
    codes = {entry[1] for stack in stacks.values() for entry in stack}
    count = len(events)
    if not count:
        return codes, {}
    _check(events)
    returned = {}  # thread_no -> (index, code_id) of its last return
    not_lines = map(operator.ne, map(_kind, events), itertools.repeat(LINE))
    for index in itertools.compress(range(count), not_lines):
        event = events[index]
        kind = event[0]
        thread_no = event[1]
        stack = stacks.get(thread_no)
        if stack is None:
            stack = stacks[thread_no] = []
        if kind == CALL:
            code_id = event[5]
            if not _is_number(code_id):
                raise ValueError(f"event {seq + index}: code id {code_id!r}")
            stack.append([seq + index, code_id])
            codes.add(code_id)
        elif kind == EXCEPTION:
            value = event[4]
            if type(value) is not list or len(value) != 2:
                raise ValueError(f"event {seq + index}: exception {value!r}")
            if stack:
                stack[-1][2:] = [value[0]]
        elif stack:
            returned[thread_no] = (index, stack.pop()[1])
    threads = list(map(_thread, events))
    if threads.count(threads[0]) == count:  # one thread: the usual case, and the cheapest
        counts, first_index, last_index = {threads[0]: count}, {threads[0]: 0}, \
            {threads[0]: count - 1}
    else:  # linear in the events whatever the number of threads
        counts = collections.Counter(threads)
        last_index = dict(zip(threads, range(count)))  # later indexes overwrite earlier ones
        first_index = dict(zip(reversed(threads), range(count - 1, -1, -1)))
    if not all(map(_is_number, counts)):
        raise ValueError("malformed thread numbers")
    stats = {}
    for thread_no, first in first_index.items():
        last = last_index[thread_no]
        last_return = returned.get(thread_no)
        if last_return is not None and last_return[0] == last:
            code_id = last_return[1]
        else:
            stack = stacks.get(thread_no)
            code_id = stack[-1][1] if stack else 0  # 0: a frame whose call was not stored
        first_ns, last_ns = events[first][2], events[last][2]
        if not (_is_number(first_ns) and _is_number(last_ns)):
            raise ValueError("malformed event times")
        stats[thread_no] = [counts[thread_no], seq + first, seq + last, first_ns, last_ns,
                            code_id]
    return codes, stats


def scan(stacks, seq, packed):
    """walk() over a batch's packed events; return (count, codes, stats, lines).

    *lines* maps each thread to the line number of its last event.  With the
    compiled scanner (``smiley_like/store/_scan.c``) the events are read from
    the msgpack bytes, without a Python object per event; without it they are
    decoded and walked.  Either way ValueError (or WireError) means the batch
    cannot be stored.
    """
    if _walk_packed is not None:
        return _walk_packed(stacks, seq, packed, codec.unpack)
    return scan_decoded(stacks, seq, packed)


def scan_decoded(stacks, seq, packed):
    """:func:`scan` in Python: decode, then :func:`walk`."""
    events = codec.decode_list(packed)
    codes, stats = walk(stacks, seq, events)
    lines = {thread_no: events[entry[2] - seq][3] for thread_no, entry in stats.items()}
    return len(events), codes, stats, lines


_KINDS = {CALL, LINE, RETURN, EXCEPTION}
_BIGGEST = 2**63 - 1  # what an SQLite integer holds


def _check(events):
    """Raise ValueError unless *events* can be walked and stored (two C-level passes).

    Only what the writer relies on is checked here (and, in :func:`walk`,
    thread numbers, times, call code ids and exceptions); readers guard
    against the rest themselves (:func:`smiley_like.events.rebuild`).
    """
    if not (isinstance(events, list) and min(map(len, events)) >= 5
            and set(map(_kind, events)) <= _KINDS
            and set(map(type, map(_kind, events))) == {int}):  # not true, not 1.0
        raise ValueError("malformed events")


def _is_number(value):
    return type(value) is int and -_BIGGEST <= value <= _BIGGEST


def _check_fields(info, numbers=(), integers=(), lists=(), maps=()):
    """Raise ValueError if a start or end map has a field of the wrong type (nil is fine)."""
    for name in numbers:
        value = info.get(name)
        if value is not None and not (type(value) is float or _is_number(value)):
            raise ValueError(f"{name} is not a number")
    for name in integers:
        if info.get(name) is not None and not _is_number(info[name]):
            raise ValueError(f"{name} is not an integer")
    for name, kind in [(name, list) for name in lists] + [(name, dict) for name in maps]:
        if info.get(name) is not None and type(info[name]) is not kind:
            raise ValueError(f"{name} is not a {kind.__name__}")


_TEXT = (str, type(None))
_INTEGER = (int, type(None))
# Each kind of definition: its fields' types after the kind.
_DEF_FIELDS = {
    "file": ((int,), (str,), _TEXT, _TEXT),
    "code": ((int,), (int,), (str,), (int,)),
    "thread": ((int,), _INTEGER, _INTEGER, _TEXT, _INTEGER),
    "thread_end": ((int,), (int,)),
}


def _check_defs(defs):
    """Raise ValueError unless every definition has the fields its kind needs."""
    for item in defs:
        fields = _DEF_FIELDS.get(item[0]) if isinstance(item, list) and item else None
        if fields is None or len(item) != len(fields) + 1 or not all(
                type(value) in types and (type(value) is not int or _is_number(value))
                for value, types in zip(item[1:], fields)):
            raise ValueError(f"malformed definition {str(item)[:60]}")


class StoreWriter:
    """A sink that writes runs, definitions and event chunks to a Store.

    It is the first sink: it tells the ones after it what it learned by
    filling in the records it is given (a batch's ``stacks`` and ``where``,
    an end's ``stored`` and ``missing``).

    The work is split in two, so that both cores are used: the caller's
    thread decodes (already done), walks the call stacks and keeps the runs'
    state; a store thread compresses and commits, one transaction per
    message, in the order received.  The queue between them is short, so a
    slow or locked database makes :meth:`batch` wait, which stops the
    monitor taking messages, which makes the senders wait: back-pressure,
    never a drop.  A database locked for longer than the busy timeout is
    tried again every *retry_after* seconds (after :meth:`give_up_when_busy`,
    once, then counted in :attr:`unstored`).  A record the database refuses
    is skipped and counted (:attr:`refused`); a failure of the database
    itself (disk full, read-only, corrupt) stops the writer, and the next
    call raises it.
    """

    def __init__(self, store, *, queue_size=4, retry_after=0.5):
        self.store = store
        self.runs = {}  # run_id -> _RunState of the runs open here
        self.retry_after = retry_after
        self.error = None  # the StoreError that stopped the store thread
        self.unstored = 0  # events not stored: locked database at close, refused records
        self.refused = 0  # messages the database would not take
        self._jobs = queue.Queue(queue_size)
        self._compressor = compression.Compressor()  # the store thread's
        self._closing = False
        self._said_busy = False
        self._thread = threading.Thread(target=self._work, name="smiley-like-store",
                                        daemon=True)
        self._thread.start()

    # -- the store thread ----------------------------------------------------

    def _submit(self, job, events=0):
        """Queue *job* (a function of a connection), to run in a transaction of its own."""
        if self.error is not None:
            raise self.error
        self._jobs.put((job, events))

    def _work(self):
        while True:
            job, events = self._jobs.get()
            try:
                if job is None:
                    return
                self._run(job, events)
            finally:
                self._jobs.task_done()

    def _run(self, job, events):
        while self.error is None:
            try:
                with self.store.begin() as conn:
                    job(conn)
                return
            except StoreBusy as error:
                if self._closing:
                    self.unstored += events
                    LOG.warning("%s: %d events could not be stored", error, events)
                    return
                if not self._said_busy:
                    self._said_busy = True
                    LOG.warning("%s; holding the batch back and retrying (senders wait "
                                "meanwhile)", error)
                time.sleep(self.retry_after)
            except StoreError as error:
                if isinstance(error.__cause__, sqlalchemy.exc.OperationalError):
                    self.error = error  # the database itself: disk full, read-only, corrupt
                else:
                    self._refused(error, events)
                return
            except Exception as error:  # a record the database would not take
                self._refused(error, events)
                return

    def _refused(self, error, events):
        self.unstored += events
        self.refused += 1
        if self.refused == 1:
            LOG.warning("a message could not be stored and was skipped (%s: %s)",
                        type(error).__name__, error)

    def give_up_when_busy(self):
        """From now on, a batch the locked database refuses once is counted, not retried."""
        self._closing = True

    def flush(self):
        """Wait until everything queued is committed; raise what stopped the store thread."""
        self._jobs.join()
        if self.error is not None:
            raise self.error

    def close(self):
        """Commit what is queued (giving up on a database still locked), then stop."""
        self._closing = True
        self._jobs.put((None, 0))
        self._thread.join()

    # -- sink interface --------------------------------------------------------

    def _state(self, run_id):
        state = self.runs.get(run_id)
        if state is None:
            self.flush()  # what the database knows of the run includes all we queued
            with self.store.connect() as conn:
                state = self.runs[run_id] = _resume(conn, run_id)
            if state.reopen:
                self._submit(lambda conn: conn.execute(
                    update(schema.run).where((schema.run.c.id == run_id)
                                             & (schema.run.c.status == "interrupted"))
                    .values(status="running")))
        return state

    def start(self, message, info):
        run_id = message.run_id
        _check_fields(info, numbers=("started_at",), integers=("clock_ns",),
                      lists=("argv",), maps=("options",))
        values = {
            "command": json.dumps([clean(arg) for arg in info.get("argv") or []]),
            "cwd": clean(info.get("cwd")),
            "started_at": info.get("started_at"),
            "clock_ns": info.get("clock_ns"),
            "python": clean(info.get("python")),
            "hostname": clean(info.get("hostname")),
            "pid": message.pid,
            "options": json.dumps(info.get("options") or {}, default=repr),
            # A child process: the run it belongs to and the process that started it.
            "root_id": _run_ref(info.get("root")) or run_id,
            "parent_id": _run_ref(info.get("parent")),
        }
        self._state(run_id)

        def store_start(conn):
            _ensure_run(conn, run_id, dict(values))
            conn.execute(update(schema.run).where(schema.run.c.id == run_id).values(**values))

        self._submit(store_start)

    def batch(self, batch):
        """Walk one batch here; store its definitions, chunk row and counters in order."""
        message, defs, packed = batch.message, batch.defs, batch.packed
        run_id = message.run_id
        seq = message.header["seq"]
        _check_defs(defs)
        state = self._state(run_id)
        if seq < state.next_seq:
            LOG.warning("run %s: ignoring a batch from sequence number %d, which is "
                        "stored already", run_id, seq)
            return
        start_stacks = _copy_stacks(state.stacks)
        stacks = _copy_stacks(start_stacks)
        # Raises on malformed events: the batch is rejected.
        n_events, codes, stats, lines = scan(stacks, seq, packed)
        if not n_events and not defs and seq == state.next_seq:
            return  # a sender saying it is alive: nothing to store
        if seq > state.next_seq:
            LOG.warning("run %s: events %d..%d never arrived", run_id, state.next_seq, seq - 1)
            state.missing += seq - state.next_seq
        # In the order of their last events: the thread of the batch's last event last.
        where = {thread_no: (entry[5], lines[thread_no], len(stacks.get(thread_no, ())))
                 for thread_no, entry in sorted(stats.items(), key=lambda item: item[1][2])}
        threads = {}
        for thread_no, (count, first_seq, last_seq, first_ns, last_ns, _) in stats.items():
            entry = state.threads.setdefault(thread_no, {"event_count": 0})
            if "first_seq" not in entry:
                entry.update(first_seq=first_seq, first_ns=first_ns)
            entry.update(event_count=entry["event_count"] + count, last_seq=last_seq,
                         last_ns=last_ns)
            threads[thread_no] = dict(entry)
        state.stacks = stacks
        state.next_seq = seq + n_events
        state.event_count += n_events
        batch.stacks, batch.where = start_stacks, where
        totals = {"event_count": state.event_count, "lost_events": state.missing}
        chunk = None
        if n_events:
            first_ns = next(entry[3] for entry in stats.values() if entry[1] == seq)
            last_ns = next(entry[4] for entry in stats.values()
                           if entry[2] == seq + n_events - 1)
            chunk = {"run_id": run_id, "seq": seq, "count": n_events,
                     "first_ns": first_ns, "last_ns": last_ns,
                     "threads": json.dumps(sorted(stats)), "codes": codec.pack(sorted(codes)),
                     "stacks": codec.pack(start_stacks)}

        def store_batch(conn):
            _ensure_run(conn, run_id, {"pid": message.pid})
            _store_defs(conn, run_id, defs)
            if chunk is not None:
                conn.execute(insert(schema.chunk).values(
                    events=self._compressor.compress(packed), **chunk))
            for thread_no, entry in threads.items():
                _ensure_thread(conn, run_id, thread_no)
                conn.execute(update(schema.thread).where(
                    (schema.thread.c.run_id == run_id)
                    & (schema.thread.c.thread_no == thread_no)).values(**entry))
            conn.execute(update(schema.run).where(schema.run.c.id == run_id).values(
                batches=schema.run.c.batches + 1, **totals))

        self._submit(store_batch, n_events)

    def end(self, message, info):
        """The run is over: how it ended, and the final count of events that never arrived."""
        run_id = message.run_id
        _check_fields(info, numbers=("ended_at",), integers=("exit_code", "sent", "lost"),
                      lists=("notes",))
        state = self._state(run_id)
        lost = info.get("lost") or 0  # given up on by the sender
        if info.get("sent") is not None:
            lost += max(0, info["sent"] - state.event_count)  # sent, never arrived
        lost = max(lost, state.missing)
        info["stored"], info["missing"] = state.event_count, lost
        values = {
            "status": clean(info.get("status", "finished")),
            "exit_code": info.get("exit_code"),
            "exc_type": clean(info.get("exc_type")),
            "exc_message": clean(info.get("exc_message")),
            "traceback": clean(info.get("traceback")),
            "ended_at": info.get("ended_at") or time.time(),
            "lost_events": lost,
            "notes": json.dumps([clean(note) for note in info.get("notes") or []]),
        }

        def store_end(conn):
            _ensure_run(conn, run_id, {"pid": message.pid})
            conn.execute(update(schema.run).where(schema.run.c.id == run_id).values(**values))

        self._submit(store_end)
        del self.runs[run_id]

    def abandon(self, run_id, note):
        """The traced process vanished without saying how it ended."""
        self.runs.pop(run_id, None)

        def store_abandon(conn):
            _ensure_run(conn, run_id)  # even if nothing of it ever arrived
            _close_run(conn, run_id, "abrupt", note, time.time())

        self._submit(store_abandon)
        self.flush()

    def interrupt(self, note, run_ids=None):
        """Mark runs still open here (all, or *run_ids*) as interrupted; return their ids.

        For when we stop, or hear nothing more from a run.  ``ended_at``
        stays empty: the program may still be running, and a monitor that
        hears from it again takes the run up where it was.
        """
        run_ids = [run_id for run_id in (run_ids or list(self.runs)) if run_id in self.runs]
        for run_id in run_ids:
            del self.runs[run_id]
        for run_id in run_ids:
            self._submit(lambda conn, run_id=run_id: _close_run(conn, run_id, "interrupted",
                                                                note, None))
        self.flush()
        return run_ids


def _run_ref(value):
    """A run id a start message names (root, parent), or None if it names none we could use."""
    if isinstance(value, str) and 0 < len(value) <= 64:
        return value
    return None


def _ensure_run(conn, run_id, values=None):
    """Create the run row if this is the first we hear of it (a late monitor)."""
    values = dict(values or {})
    values.setdefault("root_id", run_id)  # until its start says what it belongs to
    stmt = sqlite_insert(schema.run).values(
        id=run_id, command=values.pop("command", "[]"), status="running", **values)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


def _ensure_thread(conn, run_id, thread_no, **values):
    stmt = sqlite_insert(schema.thread).values(run_id=run_id, thread_no=thread_no, **values)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["run_id", "thread_no"]))


def _store_defs(conn, run_id, defs):
    for item in defs:
        kind = item[0]
        if kind == "file":
            _, file_no, path, digest, text = item
            if digest is not None and text is not None:
                conn.execute(sqlite_insert(schema.source).values(hash=digest, text=clean(text))
                             .on_conflict_do_nothing(index_elements=["hash"]))
            conn.execute(sqlite_insert(schema.file).values(
                run_id=run_id, file_no=file_no, path=clean(path), hash=digest)
                .on_conflict_do_nothing(index_elements=["run_id", "file_no"]))
        elif kind == "code":
            _, code_id, file_no, name, first_line = item
            conn.execute(sqlite_insert(schema.code).values(
                run_id=run_id, code_id=code_id, file_no=file_no, name=clean(name),
                first_line=first_line)
                .on_conflict_do_nothing(index_elements=["run_id", "code_id"]))
        elif kind == "thread":
            _, thread_no, ident, native_id, name, started_ns = item
            _ensure_thread(conn, run_id, thread_no)
            conn.execute(update(schema.thread).where(
                (schema.thread.c.run_id == run_id)
                & (schema.thread.c.thread_no == thread_no)).values(
                    ident=ident, native_id=native_id, name=clean(name),
                    started_ns=started_ns))
        elif kind == "thread_end":
            _, thread_no, ended_ns = item
            _ensure_thread(conn, run_id, thread_no)
            conn.execute(update(schema.thread).where(
                (schema.thread.c.run_id == run_id)
                & (schema.thread.c.thread_no == thread_no)).values(ended_ns=ended_ns))


def _close_run(conn, run_id, status, note, ended_at):
    current = conn.execute(select(schema.run.c.status, schema.run.c.notes)
                           .where(schema.run.c.id == run_id)).first()
    if current is None or current.status != "running":
        return
    notes = json.loads(current.notes or "[]") + [note]
    conn.execute(update(schema.run).where(schema.run.c.id == run_id).values(
        status=status, ended_at=ended_at, notes=json.dumps(notes)))


def _copy_stacks(stacks):
    return {thread_no: [list(entry) for entry in stack]
            for thread_no, stack in stacks.items() if stack}


def _resume(conn, run_id):
    """The writer's state for a run, from what the database holds of it (maybe nothing)."""
    state = _RunState()
    row = conn.execute(select(schema.run.c.event_count, schema.run.c.lost_events,
                              schema.run.c.status, schema.run.c.ended_at)
                       .where(schema.run.c.id == run_id)).first()
    if row is None:
        return state
    # A monitor stopped while recording it, and it goes on: running again.
    state.reopen = row.status == "interrupted" and row.ended_at is None
    state.event_count, state.missing = row.event_count, row.lost_events
    chunk = schema.chunk
    last = conn.execute(select(chunk.c.seq, chunk.c.stacks, chunk.c.events)
                        .where(chunk.c.run_id == run_id).order_by(chunk.c.seq.desc())
                        .limit(1)).first()
    if last is not None:
        state.stacks = codec.unpack(last.stacks)
        count, _, _, _ = scan(state.stacks, last.seq, compression.decompress(last.events))
        state.next_seq = last.seq + count
    thread = schema.thread
    for entry in conn.execute(select(thread.c.thread_no, thread.c.event_count,
                                     thread.c.first_seq, thread.c.first_ns, thread.c.last_seq,
                                     thread.c.last_ns).where(thread.c.run_id == run_id)):
        values = entry._asdict()
        state.threads[values.pop("thread_no")] = {
            key: value for key, value in values.items() if value is not None}
    return state
