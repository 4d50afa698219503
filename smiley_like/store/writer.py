"""Storing what arrives on the wire: one message, one transaction.

The writer keeps, per run, each thread's call stack, so that every stored
chunk can say which frames were open at its start; readers rebuild call ids,
parents and depths from there without reading what came before.
"""

import dataclasses
import json
import logging
import time
import zlib

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smiley_like.events import CALL, EXCEPTION, RETURN
from smiley_like.store import schema
from smiley_like.wire import codec

LOG = logging.getLogger(__name__)


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
    event_count: int = 0
    batches: int = 0
    last_batch: int = 0


def walk(stacks, seq, events):
    """Advance *stacks* over *events*; return (codes seen, per-thread stats) for a chunk.

    Stats are {thread_no: [count, first_seq, last_seq, first_ns, last_ns]}.
    A stack entry is [call_id, code_id], plus the type of the last exception
    seen in that frame, so a frame left by an exception can name it even when
    its return is in a later chunk.
    """
    codes = {entry[1] for stack in stacks.values() for entry in stack}
    stats = {}
    for event in events:
        kind = event[0]
        thread_no = event[1]
        if kind == CALL:
            stack = stacks.get(thread_no)
            if stack is None:
                stack = stacks[thread_no] = []
            stack.append([seq, event[5]])
            codes.add(event[5])
        elif kind == RETURN:
            stack = stacks.get(thread_no)
            if stack:
                stack.pop()
        elif kind == EXCEPTION:
            stack = stacks.get(thread_no)
            if stack:
                stack[-1][2:] = [event[4][0]]
        entry = stats.get(thread_no)
        if entry is None:
            stats[thread_no] = [1, seq, seq, event[2], event[2]]
        else:
            entry[0] += 1
            entry[2] = seq
            entry[4] = event[2]
        seq += 1
    return codes, stats


class StoreWriter:
    """A sink that writes runs, definitions and event chunks to a Store."""

    def __init__(self, store):
        self.store = store
        self.runs = {}  # run_id -> _RunState

    def _state(self, run_id):
        state = self.runs.get(run_id)
        if state is None:
            state = self.runs[run_id] = _RunState()
        return state

    def _ensure_run(self, conn, run_id, values=None):
        """Create the run row if this is the first we hear of it (a late monitor)."""
        values = values or {}
        stmt = sqlite_insert(schema.run).values(
            id=run_id, command=values.pop("command", "[]"), status="running", **values)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))

    def start(self, message, info):
        self._state(message.run_id)
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
            self._ensure_run(conn, message.run_id, dict(values))
            conn.execute(update(schema.run).where(schema.run.c.id == message.run_id)
                         .values(**values))

    def batch(self, batch):
        """Store one batch: definitions, one chunk row, counters."""
        message, defs, events, packed = batch.message, batch.defs, batch.events, batch.packed
        run_id = message.run_id
        state = self._state(run_id)
        seq = message.header["seq"]
        start_stacks = {t: [list(e) for e in s] for t, s in state.stacks.items() if s}
        codes, stats = walk(state.stacks, seq, events)
        if message.batch != state.last_batch + 1 and state.batches:
            LOG.warning("run %s: batches %d..%d are missing", run_id, state.last_batch + 1,
                        message.batch - 1)
        state.last_batch = message.batch
        state.batches += 1
        state.event_count += len(events)
        with self.store.begin() as conn:
            self._ensure_run(conn, run_id)
            self._store_defs(conn, run_id, defs, state)
            if events:
                conn.execute(insert(schema.chunk).values(
                    run_id=run_id, seq=seq, count=len(events),
                    first_ns=events[0][2], last_ns=events[-1][2],
                    threads=json.dumps(sorted(stats)),
                    codes=codec.pack(sorted(codes)),
                    stacks=codec.pack(start_stacks),
                    events=zlib.compress(packed, 1)))
            for thread_no, (count, first_seq, last_seq, first_ns, last_ns) in stats.items():
                entry = state.threads.setdefault(thread_no, {"event_count": 0})
                if "first_seq" not in entry:
                    entry.update(first_seq=first_seq, first_ns=first_ns)
                entry.update(event_count=entry["event_count"] + count, last_seq=last_seq,
                             last_ns=last_ns)
                self._ensure_thread(conn, run_id, thread_no)
                conn.execute(update(schema.thread).where(
                    (schema.thread.c.run_id == run_id)
                    & (schema.thread.c.thread_no == thread_no)).values(**entry))
            conn.execute(update(schema.run).where(schema.run.c.id == run_id).values(
                event_count=schema.run.c.event_count + len(events),
                batches=schema.run.c.batches + 1))

    def _ensure_thread(self, conn, run_id, thread_no, **values):
        stmt = sqlite_insert(schema.thread).values(run_id=run_id, thread_no=thread_no, **values)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["run_id", "thread_no"]))

    def _store_defs(self, conn, run_id, defs, state):
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
        state = self.runs.pop(message.run_id, None)
        lost = int(info.get("lost", 0) or 0)
        if state is not None and isinstance(info.get("sent"), int):
            lost += max(0, info["sent"] - state.event_count)  # sent, never arrived
        notes = [clean(note) for note in info.get("notes", [])]
        with self.store.begin() as conn:
            self._ensure_run(conn, message.run_id)
            conn.execute(update(schema.run).where(schema.run.c.id == message.run_id).values(
                status=clean(info.get("status", "finished")),
                exit_code=info.get("exit_code"),
                exc_type=clean(info.get("exc_type")),
                exc_message=clean(info.get("exc_message")),
                traceback=clean(info.get("traceback")),
                ended_at=info.get("ended_at") or time.time(),
                lost_events=lost,
                notes=json.dumps(notes)))
        return state

    def abandon(self, run_id, note):
        """The traced process vanished without saying how it ended."""
        self.runs.pop(run_id, None)
        with self.store.begin() as conn:
            current = conn.execute(select(schema.run.c.status, schema.run.c.notes)
                                   .where(schema.run.c.id == run_id)).first()
            if current is None or current.status != "running":
                return
            notes = json.loads(current.notes or "[]") + [note]
            conn.execute(update(schema.run).where(schema.run.c.id == run_id).values(
                status="abrupt", ended_at=time.time(), notes=json.dumps(notes)))
