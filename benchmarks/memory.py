"""Peak memory of a recording as the run gets longer: it must not grow with the run.

Usage::

    python benchmarks/memory.py [--workload NAME] [--sizes N N N ...] [--mode "OPTIONS"]

Records ``workloads/NAME.py`` at each size with ``smiley-like run`` and
samples, every 20 ms, the resident set size (``/proc/PID/status`` VmRSS) of
the traced process and of its private writer (the ``smiley_like.monitor
--private`` child).  Prints the peak of each next to the number of events
stored: bounded memory means the peaks stay flat while the events grow.
Linux only (``/proc``); only the standard library.
"""

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def measure(workload, size, options, workdir):
    database = os.path.join(workdir, f"{workload}-{size}.db")
    smiley = shutil.which("smiley-like", path=os.path.dirname(sys.executable))
    command = [smiley, "run", *options, "--database", database,
               os.path.join(HERE, "workloads", f"{workload}.py"), str(size)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak_traced = peak_writer = 0
    writer = None
    while process.poll() is None:
        peak_traced = max(peak_traced, rss_kb(process.pid))
        writer = writer or next(iter(children(process.pid)), None)
        if writer is not None:
            peak_writer = max(peak_writer, rss_kb(writer))
        time.sleep(0.02)
    if writer is not None:  # it may outlive us by a moment
        while os.path.exists(f"/proc/{writer}") and rss_kb(writer):
            peak_writer = max(peak_writer, rss_kb(writer))
            time.sleep(0.02)
    with sqlite3.connect(database) as conn:
        events = conn.execute("SELECT sum(event_count) FROM run").fetchone()[0]
    return events, peak_traced, peak_writer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="numeric")
    parser.add_argument("--sizes", type=int, nargs="+", default=[70, 140, 280])
    parser.add_argument("--mode", default="", help="options for smiley-like run")
    args = parser.parse_args(argv)
    print(f"{args.workload}, smiley-like run {args.mode}".rstrip())
    print(f"{'size':>6} {'events':>12} {'traced peak MB':>15} {'writer peak MB':>15}")
    with tempfile.TemporaryDirectory(prefix="smiley-memory-") as workdir:
        for size in args.sizes:
            events, traced, writer = measure(args.workload, size, args.mode.split(), workdir)
            print(f"{size:>6} {events:>12,} {traced / 1024:>15.1f} {writer / 1024:>15.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
