"""The compiled tracer's hooks other than sys.settrace.

On Python 3.12 and later: sys.monitoring (PEP 669).

From 3.12, sys.settrace is a shim over sys.monitoring that asks for every
event of every code object and turns each into a trace function call.  The C
tracer registers callbacks of its own instead (``_ctracer.monitoring_start``),
which record exactly what it records under sys.settrace, for less: code that
is not traced answers DISABLE once per place, and line events are asked for
only in the code objects that are traced (none with ``--calls-only``).

This module claims a tool id, registers the callbacks and gives everything
back at the end.  ``run --hook settrace`` keeps the C tracer on
sys.settrace, to compare the two.

On Python 3.11, for ``--calls-only``: the frame evaluation hook (PEP 523).
While a trace function is set, 3.11 runs every instruction through its slower
tracing dispatch; a frame evaluation function is called only as each frame
starts or resumes, and the frame then runs at full speed.  It sees calls,
returns and the exceptions that leave a frame, not lines: what --calls-only
records.
"""

import sys

from smiley_like.errors import UsageError

try:
    from smiley_like.tracer import _ctracer
except ImportError:  # not built: recorder.py says why
    _ctracer = None

HOOKS = ("auto", "settrace", "monitoring", "frame-eval")
# Free for any tool (PEP 669 names 0-2 and 5 for debuggers, coverage,
# profilers and optimizers); the named ones after, in case those are taken.
_TOOL_IDS = (3, 4, 2, 1, 0, 5)
_used_before = False  # DISABLE answers of an earlier recording stay until restart_events()


def available():
    """True where the C tracer can record through sys.monitoring."""
    return hasattr(sys, "monitoring") and _ctracer is not None \
        and hasattr(_ctracer, "monitoring_start")


def frame_eval_available():
    """True where the C tracer can record through the frame evaluation hook (3.11)."""
    return _ctracer is not None and hasattr(_ctracer, "frame_eval_start")


def choose_hook(tracer, wanted="auto", calls_only=False):
    """How *tracer* ("c" or "python") hears of events: "monitoring",
    "frame-eval" or "settrace"."""
    wanted = (wanted or "auto").lower()
    if wanted not in HOOKS:
        raise UsageError(f"unknown hook {wanted!r}: choose {', '.join(HOOKS[1:])} or auto")
    c = tracer == "c"
    if wanted == "monitoring" and not (c and available()):
        raise UsageError("sys.monitoring is for the C tracer on Python 3.12 and later")
    if wanted == "frame-eval":
        if not (c and frame_eval_available()):
            raise UsageError("the frame-eval hook is for the C tracer on Python 3.11")
        if not calls_only:
            raise UsageError("the frame-eval hook sees no lines: use it with --calls-only")
    if wanted != "auto":
        return wanted
    if c and available():
        return "monitoring"
    if c and calls_only and frame_eval_available():
        return "frame-eval"
    return "settrace"


class FrameEval:
    """The C tracer's frame evaluation function, installed for one recording.

    *too_deep* is called, once, when a thread's C stack gets too deep for it
    (every call nests a C call under the hook): the recording must go on
    through sys.settrace.
    """

    def __init__(self, too_deep):
        _ctracer.frame_eval_start(too_deep)

    def traced(self, code):
        """Nothing to do: every frame reaches the hook."""

    def close(self):
        _ctracer.frame_eval_stop()


class Monitoring:
    """The C tracer's callbacks, registered under a free tool id for one recording."""

    def __init__(self, calls_only):
        global _used_before
        monitoring = sys.monitoring
        events = monitoring.events
        self.tool = next((tool for tool in _TOOL_IDS if monitoring.get_tool(tool) is None), None)
        if self.tool is None:
            raise RuntimeError("every sys.monitoring tool id is taken")
        monitoring.use_tool_id(self.tool, "smiley-like")
        if _used_before:
            monitoring.restart_events()
        _used_before = True
        self.events = []
        # Lines are asked for code by code, as each is found to be traced.
        self.line_events = 0 if calls_only else events.LINE | events.JUMP
        everywhere = 0
        for name, callback in _ctracer.monitoring_start(monitoring.DISABLE).items():
            event = getattr(events, name)
            monitoring.register_callback(self.tool, event, callback)
            self.events.append(event)
            if name not in ("LINE", "JUMP"):
                everywhere |= event
        monitoring.set_events(self.tool, everywhere)
        self.lined = []  # code objects with line events on

    def traced(self, code):
        """*code* is traced: turn its line events on."""
        if self.line_events:
            sys.monitoring.set_local_events(self.tool, code, self.line_events)
            self.lined.append(code)

    def close(self):
        """Stop every callback and give the tool id back."""
        monitoring = sys.monitoring
        _ctracer.monitoring_stop()
        monitoring.set_events(self.tool, 0)
        for code in self.lined:
            monitoring.set_local_events(self.tool, code, 0)
        self.lined = []
        for event in self.events:
            monitoring.register_callback(self.tool, event, None)
        monitoring.free_tool_id(self.tool)
