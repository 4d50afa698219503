"""Count the instructions recording costs, with callgrind: figures the machine's noise cannot move.

Usage::

    python benchmarks/instructions.py [--workload NAME ...] [--mode NAME ...]

bench.py times whole runs, and on a shared machine its ratios move by a
fifth from one run to the next.  This runs the same workloads (at bench.py's
``--quick`` sizes) and the same modes under ``valgrind --tool=callgrind``,
which counts the instructions each process executes: the same binary and
inputs give the same count whatever else the machine does.  For each mode it
reports

* the instructions of the traced process, net of start-up (the same command
  on ``workloads/empty.py`` is subtracted, as bench.py subtracts time), and
  that as a multiple of the untraced program's;
* the instructions the tracer added per recorded event (traced minus
  untraced, over the events stored);
* of those, the instructions spent inside the compiled tracer's entry points
  (``trace_func`` on sys.settrace, the ``mon_*`` callbacks on
  sys.monitoring), inclusive, per event;
* the writer process's instructions per event (it runs beside the program, on
  another core).

Instruction counts leave out what callgrind cannot see (cache misses, the
other core waiting), so the ratios are lower than bench.py's timed ones;
they show what a change to the code did, exactly.  A run takes a few
minutes: callgrind slows each process down about fifty times.

Needs valgrind (``valgrind --version``); only the standard library is used.
"""

import argparse
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the workloads and modes are bench.py's)

DEFAULT_MODES = ("untraced", "null-c-tracer", "smiley-like", "smiley-like --no-locals",
                 "smiley-like --calls-only")
ON_MONITORING = ("smiley-like --hook settrace", "smiley-like --calls-only --hook settrace")
# The compiled tracer's entry points: what CPython calls for an event.
ENTRY_POINTS = ("trace_func", "mon_py_start", "mon_py_throw", "mon_py_return",
                "mon_py_unwind", "mon_raise", "mon_stop_iteration", "mon_line", "mon_jump")
_SUMMARY = re.compile(r"^(?:summary|totals): (\d+)", re.M)
_CMD = re.compile(r"^cmd: (.*)$", re.M)


def callgrind(command, directory):
    """Run *command* (and its children) under callgrind; {pid file: (cmd, Ir)}."""
    for old in glob.glob(os.path.join(directory, "cg.*")):
        os.unlink(old)
    # A fixed hash seed: otherwise dict and set layouts, and with them the
    # counts, change from run to run.
    subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes",
                    f"--callgrind-out-file={directory}/cg.%p", *command],
                   env={**os.environ, "PYTHONHASHSEED": "0"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    found = {}
    for path in glob.glob(os.path.join(directory, "cg.*")):
        with open(path, errors="replace") as handle:
            text = handle.read()
        total = _SUMMARY.search(text)
        cmd = _CMD.search(text)
        found[path] = (cmd.group(1) if cmd else "", int(total.group(1)) if total else 0)
    return found


def entry_point_instructions(path):
    """Inclusive instructions of the compiled tracer's entry points in one output file."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=False).stdout
    total = 0
    for line in out.splitlines():
        # one line per function and object file (callgrind also lists the
        # function under the files its inlined code came from)
        match = re.match(r"\s*([\d,]+)\s.*_ctracer\.c:(\w+) \[.*_ctracer", line)
        if match and match.group(2) in ENTRY_POINTS:
            total += int(match.group(1).replace(",", ""))
    return total


def measure(mode, workload, args, directory, python, smiley):
    """{"program": Ir, "tracer": Ir, "writer": Ir, "events": n} of one run."""
    database = os.path.join(directory, "run.db")
    for path in glob.glob(database + "*"):
        os.unlink(path)
    context = bench.Context(python=python, smiley=smiley,
                            script=os.path.join(bench.WORKLOAD_DIR, workload + ".py"),
                            args=args, database=database,
                            timing_file=os.path.join(directory, "timing.json"), endpoint="")
    runs = callgrind(bench.MODE_BY_NAME[mode].command(context), directory)
    result = {"program": 0, "tracer": 0, "writer": 0, "events": None}
    for path, (cmd, instructions) in runs.items():
        if "smiley_like.monitor" in cmd:
            result["writer"] += instructions
        elif "valgrind" not in cmd:
            result["program"] += instructions
            result["tracer"] += entry_point_instructions(path)
    if bench.MODE_BY_NAME[mode].records:
        result["events"] = bench.inspect_database(database).get("events")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", action="append", choices=sorted(bench.WORKLOADS))
    parser.add_argument("--mode", action="append", choices=[m.name for m in bench.MODES
                                                            if not m.monitor])
    parser.add_argument("--smiley", default=shutil.which("smiley-like", path=os.path.dirname(
        sys.executable)) or "smiley-like", help="the smiley-like command")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    monitoring = sys.version_info >= (3, 12)
    modes = args.mode or [*DEFAULT_MODES, *(ON_MONITORING if monitoring else ())]
    if "untraced" not in modes:
        modes.insert(0, "untraced")
    print(f"python:  {platform.python_implementation()} {platform.python_version()} "
          f"({sys.executable})")
    print(f"smiley-like: {args.smiley}; callgrind instruction counts (Ir), net of start-up; "
          f"workloads at bench.py --quick sizes")
    with tempfile.TemporaryDirectory(prefix="smiley-like-instructions-") as directory:
        startup = {mode: measure(mode, bench.EMPTY, [], directory, sys.executable, args.smiley)
                   for mode in modes}
        for workload in args.workload or bench.WORKLOADS:
            size = bench.workload_args(workload, "quick")
            print(f"\n{workload} (size {size[0]})")
            print(f"{'mode':42} {'M instr':>9} {'x untraced':>10} {'events':>10} "
                  f"{'added/ev':>9} {'tracer/ev':>9} {'writer/ev':>9}")
            base = None
            for mode in modes:
                found = measure(mode, workload, size, directory, sys.executable, args.smiley)
                net = found["program"] - startup[mode]["program"]
                if mode == "untraced":
                    base = net
                events = found["events"]
                per_event = lambda value: f"{value / events:9.0f}" if events else f"{'-':>9}"
                writer = found["writer"] - startup[mode]["writer"]
                print(f"{mode:42} {net / 1e6:9.1f} {net / base:10.2f} "
                      f"{events if events is not None else '-':>10} "
                      f"{per_event(net - base)} {per_event(found['tracer'])} "
                      f"{per_event(writer)}")


if __name__ == "__main__":
    main()
