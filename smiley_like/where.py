"""Where each thread of a run is (or was when the run ended): its last stack, line and locals.

For a run still being recorded this is the live state, as of the last batch
stored.  Everything comes from the stored events: the stacks at the chunk
holding a thread's last event, then, per open frame, the frame's last event
before its callee was called (its current line), found by reading backwards
from there, which rarely needs more than a chunk or two per frame.
"""

import dataclasses
import time
import typing

from smiley_like.events import CALL, LINE, RETURN, Code, Event, unknown_code
from smiley_like.store import queries


@dataclasses.dataclass
class Frame:
    """One open frame: the function, and the line it is at."""

    call_id: int
    code: Code
    line_no: int


@dataclasses.dataclass
class Place:
    """Where one thread was at its last recorded event."""

    thread: typing.Any  # the thread's row
    frames: list  # outermost first; empty once the thread's traced code returned
    locals: dict | None  # the innermost frame's variables, as last recorded
    last: Event  # the thread's last event
    wall: float | None  # time.time() of the last event, if the run says when it started

    @property
    def state(self):
        """How the thread's recorded code stands, in a few words."""
        last = self.last
        if self.frames:
            return "in progress"
        if last.kind == RETURN and last.raised:
            return f"ended: {last.code.name} raised {last.raised}"
        return "ended"


def places(store, run_id, thread_nos=None):
    """A :class:`Place` for every thread of the run (or those in *thread_nos*) with events."""
    run = queries.run(store, run_id)
    code_map = queries.codes(store, run_id)
    found = []
    for thread in queries.threads(store, run_id):
        if thread.last_seq is None or (thread_nos is not None
                                        and thread.thread_no not in thread_nos):
            continue
        found.append(_place(store, run, thread, code_map))
    return found


def _place(store, run, thread, code_map):
    run_id, last_seq, thread_no = run.id, thread.last_seq, thread.thread_no
    stack = queries.stacks_after(store, run_id, last_seq).get(thread_no, [])
    last = next(queries.events(store, run_id, start=last_seq, stop=last_seq,
                               code_map=code_map))
    frames = [Frame(entry[0], code_map.get(entry[1]) or unknown_code(entry[1]), 0)
              for entry in stack]
    # A frame's line: its last event before the frame it called began (or,
    # for the innermost frame, before now).
    bounds = [frame.call_id for frame in frames[1:]] + [last_seq + 1]
    local_values = None
    for index, (frame, before) in enumerate(zip(frames, bounds)):
        innermost = index == len(frames) - 1
        values = {}
        for event in queries.thread_events_backwards(store, run_id, thread_no, before,
                                                     code_map):
            if event.call_id != frame.call_id:
                continue
            if not frame.line_no:
                frame.line_no = event.line_no or frame.code.first_line
                if not innermost:
                    break
            if event.kind in (LINE, CALL) and event.value:
                for name, text in event.value.items():
                    values.setdefault(name, text)  # the newest text wins
            if event.kind == CALL:
                break
        if innermost:  # found newest first; shown in the order they were bound
            local_values = {name: text for name, text in reversed(values.items())
                            if text is not None}
    wall = None
    if run.started_at is not None and run.clock_ns is not None and thread.last_ns is not None:
        wall = run.started_at + (thread.last_ns - run.clock_ns) / 1e9
    return Place(thread, frames, local_values, last, wall)


def age(place, run, now=None):
    """How long before now (live run) or before the run's end the thread's last event was."""
    if place.wall is None:
        return None
    if run.status == "running":
        return (now or time.time()) - place.wall
    if run.ended_at is not None:
        return max(run.ended_at - place.wall, 0.0)
    return None
