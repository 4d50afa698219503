"""How a comparison of two runs reads: as text for people, as JSON-ready dicts for tools.

Events inside a divergence (the steps only one run took, the context before
it) are shown the way replay shows them, by each run's own
:class:`~smiley_like.render.console.ConsoleRenderer`.
"""

from smiley_like import diff
from smiley_like.events import KIND_NAMES
from smiley_like.render.console import BOLD, DIM, GREEN, RED

TITLES = {
    diff.FLOW: "the runs take different steps in {where}",
    diff.REST: "the rest of {where} differs (no common step within the look-ahead)",
    diff.LOCALS: "locals differ in {where}",
    diff.ARGUMENTS: "{where} is called with different arguments",
    diff.RETURN_VALUE: "{where} returns different values",
    diff.MESSAGE: "the same exception has different messages in {where}",
    diff.ENDING: "the runs end differently",
}
UNSET = "(unset)"


def title(divergence):
    return TITLES[divergence.kind].format(where=divergence.function or "the top level")


class TextReport:
    """Writes a comparison to *out*; *renderers* are the two runs' ConsoleRenderers."""

    def __init__(self, out, renderers, color=False):
        self.out = out
        self.renderers = renderers
        self.paint = renderers[0].paint
        self.color = color

    def _line(self, text=""):
        self.out.write(text + "\n")

    def header(self, runs):
        """*runs*: the two runs' descriptions (``id``, ``command``, ``program``, ``ended``,
        ``events``, ``threads``, ``thread``), as the JSON output has them."""
        for mark, run, style in zip("ab", runs, (RED, GREEN)):
            threads = f"; thread {run['thread']} of {run['threads']}" \
                if run["threads"] > 1 else ""
            self._line(self.paint(style, f"{mark}: {run['id'][:12]}  {run['command']}  "
                                         f"({run['ended']}, {run['events']} events{threads})"))
        if runs[0]["program"] != runs[1]["program"]:
            self._line(f"note: these are runs of different programs: {runs[0]['program']} "
                       f"and {runs[1]['program']}")
        self._line()

    def equivalent(self):
        self._line("The runs are equivalent.")

    def divergence(self, divergence, heading):
        self._line(self.paint(BOLD, f"{heading}: {title(divergence)}"))
        a, b = divergence.a, divergence.b
        if a.stack or b.stack:
            self._stacks(a.stack, b.stack)
        if divergence.flow and a.after and b.after:
            self._line(f"  after   a: {self._where(a.after, self.renderers[0])}")
            self._line(f"          b: {self._where(b.after, self.renderers[1])}")
        if divergence.kind != diff.ENDING:
            for mark, place, renderer in zip("ab", (a, b), self.renderers):
                shown = renderer.highlight(place.source) if self.color and place.source \
                    else place.source
                seq = f"seq {place.seq}" if place.seq is not None else "no more steps here"
                self._line(f"  {mark}  {shown}" + self.paint(DIM, f"   ({seq})"))
        if a.value is not None or b.value is not None:
            self._line(f"  value   a: {a.value}")
            self._line(f"          b: {b.value}")
        if divergence.locals:
            self._locals(divergence.locals)
        for mark, place, renderer in zip("ab", (a, b), self.renderers):
            if place.step_count:
                self._line(f"  only in {mark}: {_count(place.step_count, 'step')}, "
                           f"{_count(place.event_count, 'event')}")
                for event, size in place.steps:
                    extra = self.paint(DIM, f"  ({size} events)") if size > 1 else ""
                    self._line(renderer.format(event) + extra)
                if place.step_count > len(place.steps):
                    self._line(f"          ... {place.step_count - len(place.steps)} more")
        for mark, place, renderer in zip("ab", (a, b), self.renderers):
            if place.context:
                self._line(self.paint(DIM, f"  before it in {mark}:"))
                for event in place.context:
                    self._line(renderer.format(event))
        self._line()

    def _where(self, frame, renderer):
        source = renderer.highlight(frame.source) if self.color and frame.source \
            else frame.source
        return f"{renderer.path(frame.path)}:{frame.line}  {source}"

    def _stacks(self, stack_a, stack_b):
        names = max(len(frame.function) for frame in stack_a + stack_b)
        rows = []
        for index in range(max(len(stack_a), len(stack_b))):
            rows.append([self._frame(stack, index, names, renderer)
                         for stack, renderer in zip((stack_a, stack_b), self.renderers)])
        width = max(len(row[0]) for row in rows)
        self._line(f"  stack   {'a'.ljust(width)}   b")
        repeats = 0  # of the row above (deep recursion shows as one row and a count)
        for index, (text_a, text_b) in enumerate(rows):
            if 0 < index < len(rows) - 1 and rows[index - 1] == [text_a, text_b]:
                repeats += 1
                continue
            if repeats:
                self._line(self.paint(DIM, f"          ... {repeats} more of the same"))
                repeats = 0
            self._line(f"          {text_a.ljust(width)}   {text_b}".rstrip())

    @staticmethod
    def _frame(stack, index, width, renderer):
        if index >= len(stack):
            return ""
        frame = stack[index]
        return f"{frame.function.ljust(width)}  {renderer.path(frame.path)}:{frame.line}"

    def _locals(self, changed):
        width = max(len(name) for name, _, _ in changed)
        value_width = min(max(len(_shown(va)) for _, va, _ in changed), 40)
        self._line(f"  locals  {''.ljust(width)}  {'a'.ljust(value_width)}   b")
        for name, va, vb in changed:
            self._line(f"          {name.ljust(width)}  "
                       f"{self.paint(RED, _shown(va).ljust(value_width))}   "
                       f"{self.paint(GREEN, _shown(vb))}")

    def summary(self, summary):
        self._line(self.paint(BOLD, "Summary"))
        events = summary.events
        self._line(f"  events compared: {events[0]} in a, {events[1]} in b")
        self._line(f"  divergences: {summary.divergences} "
                   f"({summary.flow_divergences} in control flow)")
        for mark, names in (("a", summary.only_in_a), ("b", summary.only_in_b)):
            if names:
                self._line(f"  called only in {mark}: {', '.join(names)}")
        if summary.call_counts:
            self._line("  called a different number of times (a, b):")
            for name, in_a, in_b in summary.call_counts:
                self._line(f"    {name}: {in_a}, {in_b}")
        if summary.returns:
            self._line("  returned different values (times; one example):")
            for name, times, va, vb in summary.returns:
                self._line(f"    {name}: {times}; a: {va}  b: {vb}")
        self._line(f"  ended: a {summary.ended[0]}; b {summary.ended[1]}")


def _count(number, noun):
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _shown(value):
    return UNSET if value is None else value


def event_dict(event, renderer):
    return {"seq": event.seq, "kind": KIND_NAMES[event.kind], "function": event.code.name,
            "path": event.code.path, "line": event.line_no,
            "source": renderer.code_source(event.code, event.line_no), "value": event.value,
            "changes": event.changes, "raised": event.raised}


def _frame_dict(frame):
    return {"function": frame.function, "path": frame.path, "line": frame.line,
            "source": frame.source}


def _place_dict(place, renderer):
    return {
        "seq": place.seq,
        "stack": [_frame_dict(frame) for frame in place.stack],
        "after": place.after and _frame_dict(place.after),
        "source": place.source,
        "value": place.value,
        "only": {"steps": place.step_count, "events": place.event_count,
                 "first": [dict(event_dict(event, renderer), events=size)
                           for event, size in place.steps]},
        "context": [event_dict(event, renderer) for event in place.context],
    }


def divergence_dict(divergence, renderers):
    return {
        "kind": divergence.kind,
        "flow": divergence.flow,
        "title": title(divergence),
        "function": divergence.function,
        "a": _place_dict(divergence.a, renderers[0]),
        "b": _place_dict(divergence.b, renderers[1]),
        "locals": [{"name": name, "a": va, "b": vb} for name, va, vb in divergence.locals],
    }


def summary_dict(summary):
    return {
        "events": {"a": summary.events[0], "b": summary.events[1]},
        "divergences": summary.divergences,
        "flow_divergences": summary.flow_divergences,
        "only_in_a": summary.only_in_a,
        "only_in_b": summary.only_in_b,
        "call_counts": [{"function": name, "a": in_a, "b": in_b}
                        for name, in_a, in_b in summary.call_counts],
        "returns": [{"function": name, "times": times, "a": va, "b": vb}
                    for name, times, va, vb in summary.returns],
        "ended": {"a": summary.ended[0], "b": summary.ended[1]},
    }
