"""Where two recorded runs part: their events aligned by call tree, as a stream of divergences.

Pure: it takes two event streams (and a way to read each run's source lines)
and needs no database.  Memory is bounded by the look-ahead window and the
depth of the call stack, whatever the length of the runs.

How the runs are aligned: each frame is a sequence of *steps*: its lines
(keyed by function and the stripped text of the source line, so an inserted
line does not shift the rest), the calls it makes (keyed by the callee's
name; a call with everything under it is one step), the exceptions passing
through it and its return.  Equal steps are paired and their values
compared; a call paired with a call is entered and aligned the same way.
Where the next steps differ, the nearest pair of equal steps in the same
frame within ``window`` events of look-ahead is taken as the point where the
runs line up again, and the steps before it are reported as only in one run
(an extra loop iteration, an extra call).  If no equal step is in sight, the
rest of the frame is reported as different and the runs line up again at its
return.
"""

import collections
import dataclasses
import re
import typing

from smiley_like.events import CALL, EXCEPTION, LINE, RETURN, Code, Event

#: Events of look-ahead, per run, for finding where the runs line up again.
WINDOW = 20_000
#: Steps listed per side of a divergence; the rest are counted.
SHOWN = 5

# Divergence kinds.  FLOW and REST are the control flow parting; the others
# are values differing at steps both runs took.
FLOW = "flow"            # different steps, then the runs line up again
REST = "rest"            # the rest of a frame differs beyond the look-ahead
LOCALS = "locals"        # a line changed locals to different values
ARGUMENTS = "arguments"  # the same function called with different arguments
RETURN_VALUE = "return"  # the same function returned different values
MESSAGE = "exception"    # the same exception type with different messages
ENDING = "ending"        # the runs ended differently
FLOW_KINDS = frozenset({FLOW, REST})

_NOISE = re.compile(
    r"(?P<address>0x[0-9a-fA-F]{4,})"
    r"|(?P<id>\b[0-9a-f]{32}\b|\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b)"
    r"|(?P<time>\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?"
    r"|datetime\.(?:datetime|time)\([^)]*\)|time\.struct_time\([^)]*\)"
    r"|\b1[5-9]\d{8}\.\d+|\b1[5-9]\d{17}\b)")


class Masker:
    """Compares value texts, ignoring addresses, ids, timestamps and the runs' own numbers.

    *numbers* are the runs' pids and thread idents: wherever they show up as
    a whole number in a value, they count as the same.
    """

    def __init__(self, enabled=True, numbers=()):
        self.enabled = enabled
        numbers = sorted({str(number) for number in numbers if number})
        self._numbers = re.compile(r"\b(?:" + "|".join(numbers) + r")\b") if numbers else None

    def mask(self, text):
        if not self.enabled or not isinstance(text, str):
            return text
        text = _NOISE.sub(lambda m: f"<{m.lastgroup}>", text)
        return self._numbers.sub("<pid>", text) if self._numbers else text

    def same(self, a, b):
        return a == b or (self.enabled and self.mask(a) == self.mask(b))


@dataclasses.dataclass(frozen=True)
class Run:
    """One side of a comparison: its events, its source, how it ended."""

    events: typing.Iterable[Event]
    source: typing.Callable[[Code, int], str]  # stripped text of a line, "" if unknown
    ended: str = ""
    noise: tuple[int, ...] = ()  # numbers that name its process: pid, thread idents


@dataclasses.dataclass(frozen=True)
class Frame:
    """One level of a call stack: the function and the line it is at."""

    function: str
    path: str
    line: int
    source: str


@dataclasses.dataclass
class Place:
    """A divergence as seen in one run."""

    seq: int | None           # the first event that differs; None at the end of the run
    stack: list[Frame]        # outermost first
    context: list[Event]      # the events just before it
    steps: list[tuple[Event, int]] = dataclasses.field(default_factory=list)
    step_count: int = 0       # steps only in this run (the first SHOWN are in steps,
    event_count: int = 0      # with their events); events only in this run
    value: str | None = None  # the return value or exception message that differs
    after: Frame | None = None  # where its frame was before the step that differs

    @property
    def source(self):
        return self.stack[-1].source if self.stack else ""


@dataclasses.dataclass
class Divergence:
    """One point where the runs differ."""

    kind: str
    function: str  # where it happens ("" at the top level)
    a: Place
    b: Place
    locals: list[tuple[str, str | None, str | None]]  # name, value in a, value in b

    @property
    def flow(self):
        return self.kind in FLOW_KINDS


@dataclasses.dataclass
class Summary:
    """Totals over the whole comparison."""

    events: tuple[int, int]
    only_in_a: list[str]  # functions called only in a
    only_in_b: list[str]
    call_counts: list[tuple[str, int, int]]  # functions called a different number of times
    returns: list[tuple[str, int, str, str]]  # function, times differing, example in a, in b
    ended: tuple[str, str]
    divergences: int
    flow_divergences: int


def _level(event):
    """The depth of the frame an event is a step of (a call is a step of its caller)."""
    return event.depth - (event.kind == CALL)


def within(events, code_ids):
    """The events inside calls of *code_ids* and what they call, depths counted from there."""
    root = None
    for event in events:
        if root is not None and (event.depth < root
                                 or event.depth == root and event.kind == CALL):
            root = None  # the call ended without a recorded return (events were lost)
        if root is None:
            if event.kind != CALL or event.code.code_id not in code_ids:
                continue
            root = event.depth
        yield event._replace(depth=event.depth - root)
        if event.kind == RETURN and event.depth == root:
            root = None


class _Reader:
    """One run being compared: look-ahead buffer, call stack with locals, counts."""

    def __init__(self, run, context):
        self.events = iter(run.events)
        self.source = run.source
        self.buffer = collections.deque()
        self.frames = []  # [code, line_no, locals] for each open frame
        self.recent = collections.deque(maxlen=context)
        self.calls = collections.Counter()
        self.count = 0
        self._keys = {}

    def peek(self):
        if self.buffer:
            return self.buffer[0]
        event = next(self.events, None)
        if event is not None:
            self.buffer.append(event)
        return event

    def at(self, index):
        buffer = self.buffer
        while len(buffer) <= index:
            event = next(self.events, None)
            if event is None:
                return None
            buffer.append(event)
        return buffer[index]

    def key(self, event):
        kind = event.kind
        if kind == LINE:
            code = event.code
            found = self._keys.get((code.code_id, event.line_no))
            if found is None:
                text = self.source(code, event.line_no) or f"line {event.line_no}"
                found = self._keys[code.code_id, event.line_no] = (LINE, code.name, text)
            return found
        if kind == EXCEPTION:
            return (kind, event.code.name, event.value[0])
        return (kind, event.code.name)

    def take(self):
        """Move past the next event, keeping the call stack and its locals up to date."""
        event = self.buffer.popleft() if self.buffer else next(self.events)
        self.count += 1
        self.recent.append(event)
        frames = self.frames
        kind = event.kind
        if kind == CALL:
            self.calls[event.code.name] += 1
            del frames[event.depth:]
            frames.append([event.code, event.code.first_line, dict(event.value or {})])
        elif kind == RETURN:
            del frames[event.depth:]
        elif frames:
            frame = frames[-1]
            frame[1] = event.line_no
            if kind == LINE and event.value:
                frame[2].update(event.value)

    def skip(self, count):
        for _ in range(count):
            self.take()

    def steps(self, cur, limit):
        """(index in the look-ahead, key) of each next step of the frame at depth *cur*."""
        index = 0
        while index < limit:
            event = self.at(index)
            if event is None or _level(event) < cur:
                return
            yield index, self.key(event)
            index += 1
            if event.kind == RETURN and event.depth == cur:
                return
            if event.kind == CALL and _level(event) == cur:
                while index < limit and (inner := self.at(index)) is not None:
                    if _level(inner) <= cur:
                        break
                    index += 1
                    if inner.kind == RETURN and inner.depth == event.depth:
                        break

    def locals(self):
        return self.frames[-1][2] if self.frames else {}

    def place(self, event=None, value=None, *, moved=True):
        """Where this run is now, as a Place; *event* is the first that differs.

        If *moved*, the event's line (not the line before it) is where its frame is.
        """
        stack = [Frame(code.name, code.path, line, self.source(code, line))
                 for code, line, _ in self.frames]
        after = stack[-1] if stack else None
        if moved and event is not None and event.kind != CALL and stack \
                and event.depth == len(stack) - 1:
            code, line = event.code, event.line_no
            stack[-1] = Frame(code.name, code.path, line, self.source(code, line))
        return Place(event.seq if event is not None else None, stack, list(self.recent),
                     value=value, after=after)


class Comparison:
    """Iterate over it for the divergences of run *a* from run *b*; then ask for the summary."""

    def __init__(self, a, b, *, mask=True, ignore=(), window=WINDOW, context=3):
        self._a, self._b = _Reader(a, context), _Reader(b, context)
        self._ended = (a.ended, b.ended)
        self.masker = Masker(mask, a.noise + b.noise)
        self.ignore = frozenset(ignore)
        self.window = max(window, 2)
        self._returns = {}  # function: [times differing, example in a, example in b]
        self._counts = [0, 0]

    def close(self):
        """Stop reading both runs (streams that can be closed are closed)."""
        for reader in (self._a, self._b):
            getattr(reader.events, "close", lambda: None)()

    def __iter__(self):
        for divergence in self._divergences():
            self._counts[0] += 1
            self._counts[1] += divergence.flow
            yield divergence

    def _divergences(self):
        a, b = self._a, self._b
        cur = -1  # depth of the frame being aligned; -1 is above the outermost calls
        peek_a, peek_b, key_a, key_b = a.peek, b.peek, a.key, b.key
        while True:
            ea, eb = peek_a(), peek_b()
            # The hot path, once per pair of events: keep it lean.
            if ea is not None and eb is not None:
                kind = ea.kind
                if (kind == eb.kind and ea.depth == eb.depth
                        and ea.depth - (kind == CALL) == cur and key_a(ea) == key_b(eb)):
                    if kind == LINE and ea.value == eb.value:
                        a.take()
                        b.take()
                        continue
                    found = self._pair(ea, eb)
                    if found is not None:
                        yield found
                    if kind == CALL:
                        cur += 1
                    elif kind == RETURN:
                        cur -= 1
                    continue
            in_a = ea is not None and _level(ea) >= cur
            in_b = eb is not None and _level(eb) >= cur
            if not in_a and not in_b:
                if ea is None and eb is None:
                    break
                cur -= 1  # the frame ended without a return (the run was cut short)
                continue
            yield self._part(cur, ea if in_a else None, eb if in_b else None)
        if self._ended[0] != self._ended[1]:
            yield Divergence(ENDING, "", a.place(value=self._ended[0]),
                             b.place(value=self._ended[1]), [])

    def _differing(self, old_a, new_a, old_b, new_b):
        """(name, a, b) for the locals whose values differ, of those named in new_a/new_b."""
        found = []
        same = self.masker.same
        for name in dict.fromkeys([*new_a, *new_b]):
            if name in self.ignore:
                continue
            va = new_a[name] if name in new_a else old_a.get(name)
            vb = new_b[name] if name in new_b else old_b.get(name)
            if not same(va, vb):
                found.append((name, va, vb))
        return found

    def _pair(self, ea, eb):
        """Compare two equal steps' values, then take them; a Divergence if they differ."""
        a, b = self._a, self._b
        kind = ea.kind
        found = None
        if kind == LINE:
            if ea.value != eb.value:  # equal changes leave equal values
                differ = self._differing(a.locals(), ea.value or {}, b.locals(), eb.value or {})
                if differ:  # what the frame's previous line did
                    found = Divergence(LOCALS, ea.code.name, a.place(ea, moved=False),
                                       b.place(eb, moved=False), differ)
        elif kind == RETURN:
            va = f"raised {ea.raised}" if ea.raised else ea.value
            vb = f"raised {eb.raised}" if eb.raised else eb.value
            differ = ea.changes != eb.changes and self._differing(
                a.locals(), ea.changes or {}, b.locals(), eb.changes or {})
            if not self.masker.same(va, vb):
                entry = self._returns.setdefault(ea.code.name, [0, va, vb])
                entry[0] += 1
                found = Divergence(RETURN_VALUE, ea.code.name, a.place(ea, va), b.place(eb, vb),
                                   differ or [])
            elif differ:
                found = Divergence(LOCALS, ea.code.name, a.place(ea, moved=False),
                                   b.place(eb, moved=False), differ)
        elif kind == EXCEPTION:
            if not self.masker.same(ea.value[1], eb.value[1]):
                found = Divergence(MESSAGE, ea.code.name, a.place(ea, ea.value[1]),
                                   b.place(eb, eb.value[1]), [])
        a.take()
        b.take()
        if kind == CALL and ea.value != eb.value:
            differ = self._differing({}, ea.value or {}, {}, eb.value or {})
            if differ:
                found = Divergence(ARGUMENTS, ea.code.name, a.place(ea), b.place(eb), differ)
        return found

    def _part(self, cur, ea, eb):
        """The runs take different steps: skip to where they line up again."""
        a, b = self._a, self._b
        function = a.frames[-1][0].name if a.frames and cur >= 0 else ""
        differ = self._differing({}, a.locals(), {}, b.locals()) if cur >= 0 else []
        where = a.place(ea), b.place(eb)
        taken = a.count + b.count
        match = self._resync(cur)
        if match is not None:
            for reader, starts, place in zip((a, b), match, where):
                skipped = len(starts) - 1
                place.steps = [(reader.at(start), end - start)
                               for start, end in zip(starts[:SHOWN], starts[1:])]
                place.step_count = skipped
                place.event_count = starts[-1]
                reader.skip(starts[-1])
            return Divergence(FLOW, function, *where, differ)
        for reader, place in zip((a, b), where):
            self._skip_frame(reader, place, cur)
        ra, rb = a.peek(), b.peek()
        at_return = [e is not None and e.kind == RETURN and e.depth == cur for e in (ra, rb)]
        for reader, place, returns in zip((a, b), where, at_return):
            # Only one frame returns (that is part of the rest), or, in a call
            # tree that does not add up, two returns that are not a pair.
            if returns and (at_return != [True, True] or a.count + b.count == taken):
                self._note_step(place, reader.peek(), 1)
                reader.take()
        return Divergence(REST, function, *where, differ)

    def _resync(self, cur):
        """Start indexes of each run's steps up to the nearest equal pair, or None."""
        walks = [self._a.steps(cur, self.window), self._b.steps(cur, self.window)]
        seen = [{}, {}]  # key: first step number
        starts = [[], []]
        while walks[0] or walks[1]:
            for side in (0, 1):
                if walks[side] is None:
                    continue
                step = next(walks[side], None)
                if step is None:
                    walks[side] = None
                    continue
                index, key = step
                starts[side].append(index)
                other = seen[1 - side].get(key)
                if other is not None and (index or starts[1 - side][other]):
                    starts[1 - side][other + 1:] = []
                    return starts
                seen[side].setdefault(key, len(starts[side]) - 1)
        return None

    @staticmethod
    def _note_step(place, event, size):
        if len(place.steps) < SHOWN:
            place.steps.append((event, size))
        place.step_count += 1
        place.event_count += size

    def _skip_frame(self, reader, place, cur):
        """Take the rest of the frame at depth *cur*, up to its return, noting its steps."""
        shown = None  # index in place.steps of the step being taken, if it is listed
        while (event := reader.peek()) is not None and _level(event) >= cur:
            if event.kind == RETURN and event.depth == cur:
                return
            if _level(event) == cur:
                shown = len(place.steps) if len(place.steps) < SHOWN else None
                self._note_step(place, event, 1)
            else:
                place.event_count += 1
                if shown is not None:
                    step, size = place.steps[shown]
                    place.steps[shown] = (step, size + 1)
            reader.take()

    def summary(self):
        """Totals; complete once the iteration has run to the end."""
        a, b = self._a.calls, self._b.calls
        return Summary(
            events=(self._a.count, self._b.count),
            only_in_a=sorted(set(a) - set(b)),
            only_in_b=sorted(set(b) - set(a)),
            call_counts=sorted((name, a[name], b[name]) for name in set(a) & set(b)
                               if a[name] != b[name]),
            returns=sorted((name, *entry) for name, entry in self._returns.items()),
            ended=self._ended,
            divergences=self._counts[0],
            flow_divergences=self._counts[1])


class Headline:
    """Keeps where the control flow first parts, and the first value difference before it.

    Differences in values are expected when the inputs differ; the step where
    the runs go different ways is the one to look at first.  If the control
    flow never parts, the headline is the first value difference.
    """

    def __init__(self):
        self._flow = self._value = None

    def see(self, divergence):
        """Note one divergence (in order); True once the control flow has parted."""
        if self._flow is None:
            if divergence.flow:
                self._flow = divergence
            elif self._value is None:
                self._value = divergence
        return self._flow is not None

    def result(self):
        """(the headline divergence or None, the value difference before it or None)."""
        return (self._flow, self._value) if self._flow is not None else (self._value, None)


def first(divergences):
    """Headline.result() over *divergences*, reading no further than needed."""
    headline = Headline()
    for divergence in divergences:
        if headline.see(divergence):
            break
    return headline.result()
