"""Replaying a stored run: its events, filtered, in order, streamed."""

import fnmatch

from smiley_like.errors import UsageError
from smiley_like.store import queries


def select_threads(threads, wanted):
    """Thread numbers matching names or numbers in *wanted*."""
    found = {t.thread_no for t in threads
             if t.name in wanted or str(t.thread_no) in wanted or str(t.ident) in wanted}
    if not found:
        known = ", ".join(f"{t.thread_no}:{t.name}" for t in threads)
        raise UsageError(f"no thread {', '.join(wanted)} in this run (threads: {known})")
    return found


def select_codes(code_map, functions=(), files=()):
    """Code ids whose function name (qualified or short) or file matches."""
    found = set()
    for code in code_map.values():
        if functions and not any(name in (code.name, code.name.rsplit(".", 1)[-1])
                                 or fnmatch.fnmatch(code.name, name) for name in functions):
            continue
        if files and not any(fnmatch.fnmatch(code.path, pattern)
                             or fnmatch.fnmatch(code.path, "*/" + pattern)
                             or code.path.endswith("/" + pattern)
                             for pattern in files):
            continue
        found.add(code.code_id)
    if not found:
        raise UsageError("no recorded function matches " + " and ".join(
            filter(None, [", ".join(functions), ", ".join(files)])))
    return found


def events(store, run_id, *, start=None, stop=None, threads=(), functions=(), files=()):
    """Yield the events of one run that pass the filters."""
    code_map = queries.codes(store, run_id)
    thread_nos = select_threads(queries.threads(store, run_id), set(threads)) \
        if threads else None
    code_ids = select_codes(code_map, functions, files) if functions or files else None
    for event in queries.events(store, run_id, start=start, stop=stop, thread_nos=thread_nos,
                                code_ids=code_ids, code_map=code_map):
        if thread_nos is not None and event.thread_no not in thread_nos:
            continue
        if code_ids is not None and event.code.code_id not in code_ids:
            continue
        yield event
