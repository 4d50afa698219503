"""Time ``smiley-like diff`` on two recorded runs of about a million events each.

Usage::

    python benchmarks/diff_bench.py [--events N] [--repeat N] [--keep DIR]

Records a small program twice with ``smiley-like run`` (the second run makes
one extra call near the end, so the comparison reads both runs to the end,
finds one parting in control flow and lines the runs up again), then runs
``smiley-like diff`` on them ``--repeat`` times in three ways: the default
report (first divergence), ``--all -f json`` (every divergence and the
summary) and, for scale, ``replay`` of one run into /dev/null.  Prints the
median wall time (start-up of the command included), the events read per
second (both runs' events for diff) and the peak resident memory of each
command, measured with ``os.wait4`` on that process alone.

Only the standard library is used here; ``smiley-like`` is run as
``python -m smiley_like`` with this interpreter.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

PROGRAM = """\
import sys

def score(item, bonus):
    value = item * 3 % 7
    if value > 5:
        value += bonus
    return value

def run(n, bonus, extra_at):
    total = 0
    for i in range(n):
        total += score(i, bonus)
        if i == extra_at:
            total -= score(i, bonus)
    return total

print(run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
"""
EVENTS_PER_ITERATION = 8  # about: for line, body, if, call score: 3 or 4 lines, a return


def smiley(*args, database, **kwargs):
    command, *rest = args
    return [sys.executable, "-m", "smiley_like", command, "--database", database, *rest]


def measure(command):
    """(wall seconds, peak RSS in MiB) of one run of *command*, output to /dev/null."""
    with open(os.devnull, "w") as devnull:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=devnull)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed with status {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="about how many events each run records (default: 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per command (median)")
    parser.add_argument("--keep", metavar="DIR", help="record into DIR and leave it there")
    args = parser.parse_args()
    directory = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="diff-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    database = str(directory / "runs.db")
    (directory / "prog.py").write_text(PROGRAM)
    iterations = args.events // EVENTS_PER_ITERATION
    for extra_at in (-1, iterations - 100):
        started = time.perf_counter()
        subprocess.run(smiley("run", str(directory / "prog.py"), str(iterations), "1",
                              str(extra_at), database=database),
                       check=True, stdout=subprocess.DEVNULL)
        print(f"recorded a run in {time.perf_counter() - started:.1f} s")
    listed = subprocess.run(smiley("list", "-f", "value", "-c", "Run", "-c", "Events",
                                   database=database),
                            check=True, capture_output=True, text=True).stdout.split()
    run_b, events_b, run_a, events_a = listed
    print(f"run a: {events_a} events, run b: {events_b} events")
    commands = {
        "diff (first divergence)": smiley("diff", run_a, run_b, database=database),
        "diff --all -f json": smiley("diff", run_a, run_b, "--all", "-f", "json",
                                     database=database),
        "replay of run a (reference)": smiley("replay", run_a, database=database),
    }
    events = {"replay of run a (reference)": int(events_a)}
    print(f"{'command':<30} {'median s':>9} {'min s':>7} {'events/s':>9} {'peak RSS MiB':>13}")
    for name, command in commands.items():
        results = [measure(command) for _ in range(args.repeat)]
        times = [elapsed for elapsed, _ in results]
        rate = events.get(name, int(events_a) + int(events_b)) / statistics.median(times)
        print(f"{name:<30} {statistics.median(times):>9.2f} {min(times):>7.2f} {rate:>9,.0f} "
              f"{max(rss for _, rss in results):>13.1f}")
    if not args.keep:
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()


if __name__ == "__main__":
    main()
