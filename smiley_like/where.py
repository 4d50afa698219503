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

from smiley_like.events import CALL, LINE, RETURN, UNKNOWN_CALL, Code, Event, unknown_code

#: How far back (in events of the thread) to look for the innermost frame's
#: variables; a frame that has run longer shows what changed in that stretch.
LOCALS_HORIZON = 500_000
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
    # Caveats for the reader: some events of the run were lost (outer frames may be
    # missing); the innermost frame is a resumed generator, or ran longer than the
    # horizon, so its variables are only those that changed since.
    lost_events: int = 0
    locals_since: str | None = None

    @property
    def state(self):
        """How the thread's recorded code stands, in a few words."""
        last = self.last
        if self.frames or last.call_id == UNKNOWN_CALL:
            return "in progress"
        if last.kind == RETURN and last.raised:
            return f"ended: {last.code.name} raised {last.raised}"
        return "ended"


def places(store, run_id, thread_nos=None, with_locals=True):
    """A :class:`Place` for every thread of the run (or those in *thread_nos*) with events."""
    run = queries.run(store, run_id)
    code_map = queries.codes(store, run_id)
    found = []
    for thread in queries.threads(store, run_id):
        if thread.last_seq is None or (thread_nos is not None
                                        and thread.thread_no not in thread_nos):
            continue
        found.append(_place(store, run, thread, code_map, with_locals))
    return found


def _place(store, run, thread, code_map, with_locals):
    run_id, last_seq, thread_no = run.id, thread.last_seq, thread.thread_no
    stack = queries.stacks_after(store, run_id, last_seq).get(thread_no, [])
    last = next(queries.events(store, run_id, start=last_seq, stop=last_seq,
                               code_map=code_map))
    frames = [Frame(entry[0], code_map.get(entry[1]) or unknown_code(entry[1]), 0)
              for entry in stack]
    if last.call_id == UNKNOWN_CALL:  # in a frame whose call was lost
        frames.append(Frame(UNKNOWN_CALL, last.code, last.line_no or 0))
    place = Place(thread, frames, None, last, None, lost_events=run.lost_events or 0)
    # A frame's line: its last event before the frame it called began (or,
    # for the innermost frame, before now).
    bounds = [frame.call_id for frame in frames[1:]] + [last_seq + 1]
    for index, (frame, before) in enumerate(zip(frames, bounds)):
        if frame.call_id == UNKNOWN_CALL:
            continue
        innermost = index == len(frames) - 1
        values = {}
        seen = 0
        for event in queries.thread_events_backwards(store, run_id, thread_no, before,
                                                     code_map):
            seen += 1
            if innermost and seen > LOCALS_HORIZON:
                place.locals_since = f"the last {LOCALS_HORIZON:,} events"
                break
            if event.call_id != frame.call_id:
                continue
            if not frame.line_no:
                frame.line_no = event.line_no or frame.code.first_line
                if not (innermost and with_locals):
                    break
            if event.kind in (LINE, CALL) and event.value:
                for name, text in event.value.items():
                    values.setdefault(name, text)  # the newest text wins
            if event.kind == CALL:
                if event.line_no != frame.code.first_line:  # a generator resumed here
                    place.locals_since = "it last resumed"
                break
        if innermost and with_locals:  # found newest first; shown in the order bound
            place.locals = {name: text for name, text in reversed(values.items())
                            if text is not None}
    if run.started_at is not None and run.clock_ns is not None and thread.last_ns is not None:
        place.wall = run.started_at + (thread.last_ns - run.clock_ns) / 1e9
    return place


def age(place, run, now=None):
    """How long before now (live run) or before the run's end the thread's last event was."""
    if place.wall is None:
        return None
    if run.status == "running":
        return (now or time.time()) - place.wall
    if run.ended_at is not None:
        return max(run.ended_at - place.wall, 0.0)
    return None
