"""What recording a multiprocessing Pool costs, and whether every process's events arrive.

Usage::

    python benchmarks/pool_bench.py [--repeat N] [--workers N] [--tasks N] [--size N]
                                    [--method fork|spawn|forkserver]

Runs ``workloads/pool.py`` (a Pool of ``--workers`` processes over a CPU-bound
function) untraced, recorded in local mode, and recorded with ``--remote`` by
a monitor started for each measurement, interleaved: for each repetition,
each mode once.  Times are wall times of the whole command, from spawn to the
moment every process of the run is stored (local mode: the command's exit,
then the database is polled until no process of the run is still running;
remote: the same poll on the monitor's database).  Medians are reported, with
the ratios to untraced.  For every recording it checks, from the database,
that the run has the parent and every worker, and it sums the lost events,
which must be zero.

Only the standard library is used here; ``smiley-like`` is run as a command.
"""

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "workloads", "pool.py")


def free_endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def smiley_command():
    found = shutil.which("smiley-like", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "smiley_like"]


def settled(database, timeout=300):
    """(processes, events, lost, statuses) of the run in *database*, once all have ended."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with sqlite3.connect(database) as conn:
                rows = conn.execute("SELECT status, event_count, lost_events FROM run").fetchall()
        except sqlite3.Error:
            rows = []
        if rows and all(status != "running" for status, _, _ in rows):
            return (len(rows), sum(row[1] for row in rows), sum(row[2] for row in rows),
                    sorted(row[0] for row in rows))
        if time.monotonic() > deadline:
            raise SystemExit(f"the run in {database} never ended: {rows}")
        time.sleep(0.02)


def measure(mode, args, program, workdir):
    database = os.path.join(workdir, f"{mode}-{time.monotonic_ns()}.db")
    monitor = None
    if mode == "untraced":
        command = [sys.executable, *program]
    elif mode == "local":
        command = [*smiley_command(), "run", "--database", database, *program]
    else:
        endpoint = free_endpoint()
        monitor = subprocess.Popen([*smiley_command(), "monitor", "--quiet", "--database",
                                    database, "--socket", endpoint],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while "listening" not in monitor.stderr.readline():
            if monitor.poll() is not None:
                raise SystemExit("the monitor did not start")
        command = [*smiley_command(), "run", "--remote", "--socket", endpoint, *program]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    stored = None if mode == "untraced" else settled(database)
    elapsed = time.perf_counter() - started
    if monitor is not None:
        monitor.terminate()
        monitor.wait(60)
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed ({result.returncode}): {result.stderr}")
    return elapsed, result.stdout.strip(), stored


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--method", default="fork", choices=("fork", "spawn", "forkserver"))
    args = parser.parse_args(argv)
    program = [WORKLOAD, str(args.workers), str(args.tasks), str(args.size), args.method]
    modes = ("untraced", "local", "remote")
    times = {mode: [] for mode in modes}
    print(f"Pool of {args.workers} ({args.method}), {args.tasks} tasks of size {args.size}, "
          f"{args.repeat} repetitions, load {os.getloadavg()[0]:.2f}, Python "
          f"{sys.version.split()[0]}")
    expected = None
    with tempfile.TemporaryDirectory(prefix="smiley-pool-") as workdir:
        for rep in range(args.repeat):
            for mode in modes:
                elapsed, output, stored = measure(mode, args, program, workdir)
                times[mode].append(elapsed)
                expected = expected or output
                line = f"  rep {rep + 1} {mode:<8} {elapsed:8.3f} s"
                if output != expected:
                    line += f"  OUTPUT DIFFERS: {output!r} != {expected!r}"
                if stored is not None:
                    processes, events, lost, statuses = stored
                    line += (f"  {processes} processes, {events:,} events, {lost} lost"
                             f"  ({', '.join(statuses)})")
                    if processes < args.workers + 1 or lost:
                        line += "  INCOMPLETE"
                print(line, flush=True)
    base = statistics.median(times["untraced"])
    print(f"\n{'mode':<10}{'median s':>10}{'x untraced':>12}")
    for mode in modes:
        median = statistics.median(times[mode])
        print(f"{mode:<10}{median:>10.3f}{median / base:>12.1f}")


if __name__ == "__main__":
    main()
