"""The read side of the run database: runs, their definitions, and their events, streamed."""

import json

from sqlalchemy import delete, func, select

from smiley_like.errors import UnknownRun
from smiley_like.events import Code, rebuild
from smiley_like.store import compression, schema
from smiley_like.wire import codec

def runs(store):
    """All runs (their first processes), newest first, each with ``processes``: how many."""
    run = schema.run
    children = schema.run.alias("children")
    count = select(func.count()).where(children.c.root_id == run.c.id).scalar_subquery()
    with store.connect() as conn:
        return conn.execute(select(run, count.label("processes"))
                            .where(run.c.root_id == run.c.id)
                            .order_by(run.c.started_at.desc(), run.c.id)).all()


def processes(store, run_id):
    """The process rows of a run, first process first; for a child process's id, that one."""
    run = schema.run
    with store.connect() as conn:
        return conn.execute(select(run).where((run.c.root_id == run_id)
                                              | ((run.c.id == run_id)
                                                 & (run.c.root_id != run_id)))
                            .order_by(run.c.started_at, run.c.id)).all()


def select_processes(rows, pids):
    """The rows of *rows* whose pid is in *pids* (a list of text); raise UnknownRun if none."""
    found = [row for row in rows if str(row.pid) in pids or row.id in pids]
    if not found:
        known = ", ".join(str(row.pid) for row in rows)
        raise UnknownRun(f"no process {', '.join(pids)} in this run (processes: {known})")
    return found


def resolve_run(store, ref):
    """A full run id from *ref*: a full id, a unique prefix, or ``last``."""
    with store.connect() as conn:
        if ref == "last":
            found = conn.execute(select(schema.run.c.id).where(
                schema.run.c.root_id == schema.run.c.id).order_by(
                schema.run.c.started_at.desc()).limit(1)).scalars().all()
            if not found:
                raise UnknownRun(f"no runs recorded in '{store.name}'")
            return found[0]
        if not ref or any(ch not in "0123456789abcdef" for ch in ref.lower()):
            raise UnknownRun(f"no run '{ref}' in '{store.name}' (a run id is hex digits, or "
                             "'last')")
        found = conn.execute(select(schema.run.c.id).where(
            schema.run.c.id.startswith(ref.lower(), autoescape=True)).limit(2)).scalars().all()
    if not found:
        raise UnknownRun(f"no run '{ref}' in '{store.name}'")
    if len(found) > 1:
        raise UnknownRun(f"run id '{ref}' is ambiguous in '{store.name}': give more digits")
    return found[0]


def run(store, run_id):
    with store.connect() as conn:
        return conn.execute(select(schema.run).where(schema.run.c.id == run_id)).one()


def threads(store, run_id):
    with store.connect() as conn:
        return conn.execute(select(schema.thread).where(schema.thread.c.run_id == run_id)
                            .order_by(schema.thread.c.thread_no)).all()


def files(store, run_id):
    """{file_no: (path, source lines or None)} of one run."""
    with store.connect() as conn:
        rows = conn.execute(
            select(schema.file.c.file_no, schema.file.c.path, schema.source.c.text)
            .select_from(schema.file.outerjoin(schema.source,
                                               schema.file.c.hash == schema.source.c.hash))
            .where(schema.file.c.run_id == run_id)).all()
    return {row.file_no: (row.path, row.text.splitlines() if row.text is not None else None)
            for row in rows}


def codes(store, run_id):
    """{code_id: Code} of one run."""
    with store.connect() as conn:
        rows = conn.execute(
            select(schema.code, schema.file.c.path)
            .select_from(schema.code.outerjoin(schema.file, (schema.file.c.run_id == schema.code.c.run_id)
                                               & (schema.file.c.file_no == schema.code.c.file_no)))
            .where(schema.code.c.run_id == run_id)).all()
    return {row.code_id: Code(row.code_id, row.file_no, row.path or "?", row.name, row.first_line)
            for row in rows}


def events(store, run_id, *, start=None, stop=None, thread_nos=None, code_ids=None,
           code_map=None):
    """Yield the :class:`Event` records of a run in order, streaming chunk by chunk.

    ``start``/``stop`` bound the sequence numbers (inclusive); ``thread_nos`` and
    ``code_ids`` skip chunks that cannot hold a match (callers still filter
    events).  Memory stays flat whatever the run's length.
    """
    code_map = code_map if code_map is not None else codes(store, run_id)
    chunk = schema.chunk
    query = select(chunk.c.seq, chunk.c.threads, chunk.c.codes, chunk.c.stacks,
                   chunk.c.events).where(chunk.c.run_id == run_id).order_by(chunk.c.seq)
    if stop is not None:
        query = query.where(chunk.c.seq <= stop)
    with store.connect() as conn:
        if start is not None:  # from the chunk holding start: a search the key answers
            first = conn.execute(select(func.max(chunk.c.seq)).where(
                (chunk.c.run_id == run_id) & (chunk.c.seq <= start))).scalar()
            query = query.where(chunk.c.seq >= (first if first is not None else start))
        for row in conn.execution_options(yield_per=4).execute(query):
            if thread_nos is not None and not thread_nos.intersection(json.loads(row.threads)):
                continue
            if code_ids is not None and not code_ids.intersection(codec.unpack(row.codes)):
                continue
            stacks = codec.unpack(row.stacks)
            seq = row.seq
            for event in codec.unpack(compression.decompress(row.events)):
                if stop is not None and seq > stop:
                    return
                # Events before --from in this chunk still move the stacks.
                shown = rebuild(event, seq, stacks, code_map)
                if start is None or seq >= start:
                    yield shown
                seq += 1


def thread_events_backwards(store, run_id, thread_no, before, code_map):
    """Yield one thread's events numbered below *before*, newest first, a chunk at a time.

    Each chunk is read once, when the caller gets that far back.
    """
    chunk = schema.chunk
    while True:
        with store.connect() as conn:
            row = conn.execute(select(chunk.c.seq, chunk.c.count, chunk.c.threads)
                               .where((chunk.c.run_id == run_id) & (chunk.c.seq < before))
                               .order_by(chunk.c.seq.desc()).limit(1)).first()
        if row is None:
            return
        if thread_no in json.loads(row.threads):
            stop = min(before, row.seq + row.count) - 1
            found = [event for event in events(store, run_id, start=row.seq, stop=stop,
                                               code_map=code_map)
                     if event.thread_no == thread_no]
            yield from reversed(found)
        before = row.seq


def stacks_after(store, run_id, seq):
    """Every thread's open frames right after event *seq*: {thread_no: [[call_id, code_id], ...]}."""
    chunk = schema.chunk
    with store.connect() as conn:
        row = conn.execute(select(chunk.c.seq, chunk.c.stacks, chunk.c.events)
                           .where((chunk.c.run_id == run_id) & (chunk.c.seq <= seq))
                           .order_by(chunk.c.seq.desc()).limit(1)).first()
    if row is None:
        return {}
    stacks = codec.unpack(row.stacks)
    number = row.seq
    for event in codec.unpack(compression.decompress(row.events)):
        rebuild(event, number, stacks, {})
        if number == seq:
            break
        number += 1
    return stacks


def delete_runs(store, run_ids):
    """Remove runs, their events and definitions, and sources no run uses any more."""
    with store.begin() as conn:
        children = conn.execute(select(schema.run.c.id).where(
            schema.run.c.root_id.in_(run_ids))).scalars().all()
        run_ids = sorted(set(run_ids) | set(children))
        for table in (schema.chunk, schema.thread, schema.code, schema.file):
            conn.execute(delete(table).where(table.c.run_id.in_(run_ids)))
        conn.execute(delete(schema.run).where(schema.run.c.id.in_(run_ids)))
        used = select(schema.file.c.hash).where(schema.file.c.hash.is_not(None))
        conn.execute(delete(schema.source).where(schema.source.c.hash.not_in(used)))
