"""Nanoseconds per event of the trace function alone, in-process, next to a no-op tracer.

bench.py measures whole runs (tracer, publisher, writer, database).  This
isolates the hot path: it installs smiley-like's trace functions (the
Python one and, if built, the compiled one) with a
stand-in publisher that only keeps the buffer, so neither the sender thread
nor the writer take any time, and times small functions under it.  It then
times msgpack packing of the Python tracer's tuples, which the publisher
thread does on the same GIL (the C tracer writes msgpack itself, as it goes,
so that cost is inside its figures).  Each figure is the minimum of --repeat runs: the
machine's noise only ever adds time.

It reaches into the Recorder (``_make_tracer``) on purpose: that is the unit
being measured.
"""

import argparse
import platform
import sys
import time

from smiley_like.tracer import monitoring
from smiley_like.tracer.capture import Capture
from smiley_like.tracer.filters import FileFilter
from smiley_like.tracer.recorder import Recorder, _ctracer, _real_settrace
from smiley_like.wire import codec


class BufferOnly:
    """The part of the publisher the trace function touches, without its thread."""

    def __init__(self):
        self.buffer = []  # the Python tracer's tuples
        self.packed = None  # the C tracer's EventBuffer, set by the Recorder
        self.defs = []
        self.max_buffered = sys.maxsize
        self.thread_idents = set()

    def wait_for_room(self):
        pass


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def loop(n):
    total = 0
    names = []
    for i in range(n):
        x = i * 3
        y = x % 7
        total += y
        if y == 0:
            names.append("k" + str(i))
    return total, len(names)


_NAMES = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
          "november oscar papa quebec romeo sierra tango uniform victor whiskey xray "
          "yankee zulu").split()
_TEXT = [_NAMES[(i * i * 7919 + i) % 9973 % 26] + ("." if i % 13 == 0 else "")
         for i in range(100000)]


def words(n):
    """count_words of workloads/text.py: locals that are dicts changing at every line."""
    counts = {}
    pairs = {}
    previous = None
    for raw in _TEXT[:n]:
        word = raw.strip(".").lower()
        counts[word] = counts.get(word, 0) + 1
        if previous is not None:
            key = f"{previous}->{word}"
            pairs[key] = pairs.get(key, 0) + 1
        previous = None if raw.endswith(".") else word
    return len(counts), len(pairs)


WORKLOADS = {"fib": (fib, 18), "loop": (loop, 20000), "words": (words, 5000)}
# label: (trace_locals, tracer, calls_only)
MODES = {"python --no-locals": (False, "python", False), "python": (True, "python", False),
         "c --calls-only": (True, "c", True), "c --no-locals": (False, "c", False),
         "c": (True, "c", False)}


def noop(frame, event, arg):
    return noop


def timed(function, argument, tracer, install=_real_settrace):
    install(tracer)
    start = time.perf_counter()
    function(argument)
    elapsed = time.perf_counter() - start
    install(None)
    return elapsed


def ours(trace_locals, tracer, calls_only, hook):
    publisher = BufferOnly()
    recorder = Recorder(FileFilter(), Capture(), publisher, trace_locals=trace_locals,
                        tracer=tracer, calls_only=calls_only,
                        hook=hook if tracer == "c" else "settrace")
    recorder._active = True  # what start() does, without installing it everywhere

    def install(trace_function):
        # sys.monitoring (the C tracer on 3.12+) needs its callbacks registered
        # around the thread's tracer; settrace, nothing more.
        if trace_function is not None:
            recorder._start_monitoring()
        recorder._install(trace_function)
        if trace_function is None:
            recorder._stop_monitoring()

    return publisher, recorder._make_tracer(0), install


def measure(name, repeat, hook):
    function, argument = WORKLOADS[name]
    best = {}
    counts = {}  # events each mode recorded
    packed_ns = []
    for _ in range(repeat):
        best["untraced"] = min(best.get("untraced", 1e9), timed(function, argument, None))
        best["no-op tracer"] = min(best.get("no-op tracer", 1e9),
                                   timed(function, argument, noop))
        for label, (trace_locals, kind, calls_only) in MODES.items():
            if kind == "c" and _ctracer is None:
                continue
            publisher, tracer, install = ours(trace_locals, kind, calls_only, hook)
            best[label] = min(best.get(label, 1e9), timed(function, argument, tracer, install))
            counts[label] = len(publisher.buffer if kind == "python" else publisher.packed)
            if kind == "python":
                if trace_locals:
                    # What the publisher thread does with the Python tracer's tuples;
                    # the C tracer writes msgpack itself, inside the figures above.
                    start = time.perf_counter()
                    codec.pack(publisher.buffer)
                    packed_ns.append((time.perf_counter() - start) / len(publisher.buffer)
                                     * 1e9)
    events = counts["python"]  # every event: what untraced and no-op are counted against
    print(f"\n{name}({argument}): {events:,} events (fewer with --calls-only)")
    print(f"  {'mode':18} {'ns/event':>9} {'x untraced':>11} {'x no-op':>8}")
    for label, seconds in best.items():
        recorded = counts.get(label, events)
        # A workload of one call records a handful of events with --calls-only:
        # a time per event means nothing there.
        per_event = f"{seconds / recorded * 1e9:9.0f}" if recorded >= 1000 else f"{'-':>9}"
        print(f"  {label:18} {per_event} {seconds / best['untraced']:11.1f}"
              f" {seconds / best['no-op tracer']:8.1f}")
    print(f"  {'msgpack packing':18} {min(packed_ns):9.0f}   (of the python tracer's tuples, "
          "in the publisher thread, same GIL; the c tracer packs as it goes)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (minimum kept)")
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    parser.add_argument("--hook", choices=monitoring.HOOKS, default="auto",
                        help="how the c tracer hears of events (auto: sys.monitoring on 3.12+)")
    args = parser.parse_args()
    hook = monitoring.choose_hook("c", args.hook) if _ctracer is not None else "settrace"
    print(f"python {platform.python_version()} ({sys.executable}); "
          f"minimum of {args.repeat} runs; c tracer through {hook}")
    for name in args.workload or sorted(WORKLOADS):
        measure(name, args.repeat, hook)


if __name__ == "__main__":
    main()
