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

import dataclasses
import itertools
import json
import logging
import operator
import time
import zlib

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smiley_like.events import CALL, EXCEPTION, LINE, RETURN
from smiley_like.store import schema
from smiley_like.wire import codec

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
            stack.append([seq + index, event[5]])
            codes.add(event[5])
        elif stack:
            if kind == RETURN:
                returned[thread_no] = (index, stack.pop()[1])
            elif kind == EXCEPTION:
                stack[-1][2:] = [event[4][0]]
    threads = list(map(_thread, events))
    single = threads.count(threads[0]) == count
    stats = {}
    for thread_no in ((threads[0],) if single else dict.fromkeys(threads)):
        first = threads.index(thread_no)
        last = count - 1 - threads[::-1].index(thread_no) if not single else count - 1
        last_return = returned.get(thread_no)
        if last_return is not None and last_return[0] == last:
            code_id = last_return[1]
        else:
            stack = stacks.get(thread_no)
            code_id = stack[-1][1] if stack else 0  # 0: a frame whose call was not stored
        stats[thread_no] = [count if single else threads.count(thread_no), seq + first,
                            seq + last, events[first][2], events[last][2], code_id]
    return codes, stats


class StoreWriter:
    """A sink that writes runs, definitions and event chunks to a Store.

    It is the first sink: it tells the ones after it what it learned by
    filling in the records it is given (a batch's ``stacks`` and ``where``,
    an end's ``stored`` and ``missing``).
    """

    def __init__(self, store):
        self.store = store
        self.runs = {}  # run_id -> _RunState of the runs open here

    def _state(self, conn, run_id):
        state = self.runs.get(run_id)
        if state is None:
            state = self.runs[run_id] = _resume(conn, run_id)
        return state

    def _ensure_run(self, conn, run_id, values=None):
        """Create the run row if this is the first we hear of it (a late monitor)."""
        values = values or {}
        stmt = sqlite_insert(schema.run).values(
            id=run_id, command=values.pop("command", "[]"), status="running", **values)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))

    def start(self, message, info):
        values = {
            "command": json.dumps([clean(arg) for arg in info.get("argv", [])]),
            "cwd": clean(info.get("cwd")),
            "started_at": info.get("started_at"),
            "clock_ns": info.get("clock_ns"),
            "python": clean(info.get("python")),
            "hostname": clean(info.get("hostname")),
            "pid": message.pid,
            "options": json.dumps(info.get("options", {})),
        }
        with self.store.begin() as conn:
            self._state(conn, message.run_id)
            self._ensure_run(conn, message.run_id, dict(values))
            conn.execute(update(schema.run).where(schema.run.c.id == message.run_id)
                         .values(**values))

    def batch(self, batch):
        """Store one batch: definitions, one chunk row, counters.

        The run's state changes only once the transaction has committed, so a
        batch that failed (a locked database) can be handed in again.
        """
        message, defs, events, packed = batch.message, batch.defs, batch.events, batch.packed
        run_id = message.run_id
        seq = message.header["seq"]
        with self.store.begin() as conn:
            state = self._state(conn, run_id)
            if seq < state.next_seq:
                LOG.warning("run %s: ignoring a batch from sequence number %d, which is "
                            "stored already", run_id, seq)
                return
            missing = state.missing + seq - state.next_seq
            start_stacks = _copy_stacks(state.stacks)
            stacks = _copy_stacks(start_stacks)
            codes, stats = walk(stacks, seq, events)
            threads = {}
            for thread_no, (count, first_seq, last_seq, first_ns, last_ns, _) in stats.items():
                entry = dict(state.threads.get(thread_no) or {"event_count": 0})
                if "first_seq" not in entry:
                    entry.update(first_seq=first_seq, first_ns=first_ns)
                entry.update(event_count=entry["event_count"] + count, last_seq=last_seq,
                             last_ns=last_ns)
                threads[thread_no] = entry
            self._ensure_run(conn, run_id, {"pid": message.pid})
            self._store_defs(conn, run_id, defs)
            if events:
                conn.execute(insert(schema.chunk).values(
                    run_id=run_id, seq=seq, count=len(events),
                    first_ns=events[0][2], last_ns=events[-1][2],
                    threads=json.dumps(sorted(stats)),
                    codes=codec.pack(sorted(codes)),
                    stacks=codec.pack(start_stacks),
                    events=zlib.compress(packed, 1)))
            for thread_no, entry in threads.items():
                self._ensure_thread(conn, run_id, thread_no)
                conn.execute(update(schema.thread).where(
                    (schema.thread.c.run_id == run_id)
                    & (schema.thread.c.thread_no == thread_no)).values(**entry))
            conn.execute(update(schema.run).where(schema.run.c.id == run_id).values(
                event_count=state.event_count + len(events), lost_events=missing,
                batches=schema.run.c.batches + 1))
        if missing > state.missing:
            LOG.warning("run %s: events %d..%d never arrived", run_id, state.next_seq, seq - 1)
        state.stacks, state.missing = stacks, missing
        state.next_seq = seq + len(events)
        state.event_count += len(events)
        state.threads.update(threads)
        batch.stacks = start_stacks
        batch.where = {thread_no: (entry[5], events[entry[2] - seq][3])
                       for thread_no, entry in stats.items()}

    def _ensure_thread(self, conn, run_id, thread_no, **values):
        stmt = sqlite_insert(schema.thread).values(run_id=run_id, thread_no=thread_no, **values)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["run_id", "thread_no"]))

    def _store_defs(self, conn, run_id, defs):
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
                _, thread_no, ident, native_id, name = item
                self._ensure_thread(conn, run_id, thread_no)
                conn.execute(update(schema.thread).where(
                    (schema.thread.c.run_id == run_id)
                    & (schema.thread.c.thread_no == thread_no)).values(
                        ident=ident, native_id=native_id, name=clean(name)))

    def end(self, message, info):
        """The run is over: how it ended, and the final count of events that never arrived."""
        with self.store.begin() as conn:
            state = self._state(conn, message.run_id)
            lost = int(info.get("lost", 0) or 0)  # given up on by the sender
            if isinstance(info.get("sent"), int):
                lost += max(0, info["sent"] - state.event_count)  # sent, never arrived
            lost = max(lost, state.missing)
            info["stored"], info["missing"] = state.event_count, lost
            notes = [clean(note) for note in info.get("notes", [])]
            self._ensure_run(conn, message.run_id, {"pid": message.pid})
            conn.execute(update(schema.run).where(schema.run.c.id == message.run_id).values(
                status=clean(info.get("status", "finished")),
                exit_code=info.get("exit_code"),
                exc_type=clean(info.get("exc_type")),
                exc_message=clean(info.get("exc_message")),
                traceback=clean(info.get("traceback")),
                ended_at=info.get("ended_at") or time.time(),
                lost_events=lost,
                notes=json.dumps(notes)))
        del self.runs[message.run_id]

    def abandon(self, run_id, note):
        """The traced process vanished without saying how it ended."""
        self.runs.pop(run_id, None)
        self._close_run(run_id, "abrupt", note, ended_at=time.time())

    def interrupt(self, note):
        """We are stopping: mark every run still open here as interrupted; return their ids.

        ``ended_at`` stays empty: the program may still be running, and a
        monitor started later can take the run up again.
        """
        run_ids = list(self.runs)
        self.runs.clear()
        for run_id in run_ids:
            self._close_run(run_id, "interrupted", note, ended_at=None)
        return run_ids

    def _close_run(self, run_id, status, note, ended_at):
        with self.store.begin() as conn:
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
    if row.status == "interrupted" and row.ended_at is None:  # a monitor stopped; it goes on
        conn.execute(update(schema.run).where(schema.run.c.id == run_id)
                     .values(status="running"))
    state.event_count, state.missing = row.event_count, row.lost_events
    chunk = schema.chunk
    last = conn.execute(select(chunk.c.seq, chunk.c.stacks, chunk.c.events)
                        .where(chunk.c.run_id == run_id).order_by(chunk.c.seq.desc())
                        .limit(1)).first()
    if last is not None:
        state.stacks = codec.unpack(last.stacks)
        events = codec.unpack(zlib.decompress(last.events))
        walk(state.stacks, last.seq, events)
        state.next_seq = last.seq + len(events)
    thread = schema.thread
    for entry in conn.execute(select(thread.c.thread_no, thread.c.event_count,
                                     thread.c.first_seq, thread.c.first_ns, thread.c.last_seq,
                                     thread.c.last_ns).where(thread.c.run_id == run_id)):
        values = entry._asdict()
        state.threads[values.pop("thread_no")] = {
            key: value for key, value in values.items() if value is not None}
    return state
