"""Measure what recording costs by timing workloads untraced, under a no-op tracer and under smiley-like, interleaved.

Usage::

    python benchmarks/bench.py [--repeat N] [--quick | --full] [--workload NAME ...]
                               [--mode NAME ...] [--json FILE]

Every measurement is a fresh subprocess, and repetitions are interleaved
(for each repetition, for each workload: mode A, B, C, D), so that a slow
patch on a shared machine hits every mode alike; medians are reported.  The
fast modes (untraced and the no-op tracers) run ``--cheap-samples`` times (5) at
each turn: their medians are the denominators of the ratios, and on a busy
machine a single 50 ms figure is mostly noise.

How time is measured, the same way in every mode:

* The figure used for ratios is the subprocess's wall time, from spawn to
  exit, minus that mode's fixed start-up cost.  The start-up cost is the
  median wall time of the same command running ``workloads/empty.py``,
  measured in the same interleaving, just before every workload.  For smiley-like
  this subtracts importing the CLI, starting the writer process and creating
  the database, and keeps everything the program's size adds: tracing,
  sending, and waiting at exit until the writer has stored the last event.
* ``untraced`` and ``noop-settrace`` run the workload through ``driver.py``,
  which executes it in-process with ``runpy.run_path`` (as ``python
  script.py`` would) and also writes the ``perf_counter`` time of the script
  alone to a side file, leaving the script's output untouched.  That figure is
  shown as "in-proc s", a check on the start-up subtraction; it is not used
  for ratios, because smiley-like has no equivalent that includes storing.
* Raw wall-time medians are reported beside the net ones.

For recording modes each measurement gets its own temporary database; after
the run it is read with sqlite3 for the stored event count (``run.event_count``,
checked against the chunks and the ``lost_events`` column), checkpointed
(``PRAGMA wal_checkpoint(TRUNCATE)``) and sized, database plus any ``-wal``
file, for bytes per event.  Each workload prints a checksum line; a mode whose
output differs from the untraced one is reported.

Modes: the default ``smiley-like`` records with the compiled tracer when it
is built (see ``show``'s Tracer field); ``--tracer python`` modes measure the
pure-Python tracer beside it.  ``null-c-tracer`` (and its ``--calls-only``)
runs the workload under a C trace function that records nothing: what
CPython's trace hook costs by itself, the floor under any recorder built on
it, with and without line events.  ``benchmarks/tracer_cost.py`` measures the
trace functions alone, without the publisher and the writer.

Sizes: smiley-like slows these programs down 60-260 times (with locals, with
the Python tracer; about a third of that with the compiled one), so
the default sizes take only about 0.05-0.15 s untraced, which keeps the
default run (5 repetitions, ~95 s each on 2 CPUs) under ten minutes.  At
those sizes the untraced figure, the denominator of every ratio, carries the
start-up subtraction's jitter (compare "net s" with "in-proc s").  ``--full``
runs the scripts at their own ``SIZE`` (about 0.3-0.5 s untraced, as a
standalone program) for steadier ratios and takes about three times longer;
``--quick`` is one repetition at small sizes, a smoke test.

Only the standard library is used here; ``smiley-like`` is run as a command.
"""

import argparse
import dataclasses
import json
import os
import platform
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD_DIR = os.path.join(HERE, "workloads")
DRIVER = os.path.join(HERE, "driver.py")
EMPTY = "empty"

# name: (size for the default run, size for --quick).  --full passes no size,
# so each script uses its own SIZE constant.
WORKLOADS = {
    "recursion": (22, 17),
    "numeric": (120, 50),
    "scheduler": (2400, 600),
    "text": (40000, 10000),
    "generators": (40000, 10000),
    "threads": (4500, 1500),
}


@dataclasses.dataclass
class Context:
    """What a mode needs to build its command line for one measurement."""

    python: str
    smiley: str
    script: str
    args: list
    database: str
    timing_file: str
    endpoint: str


@dataclasses.dataclass(frozen=True)
class Mode:
    """One way of running a workload.

    ``records``: it stores a run in ``ctx.database``, to be inspected.
    ``timed_inside``: it writes the in-process time to ``ctx.timing_file``.
    ``cheap``: it takes a fraction of a second, so it is sampled
    ``--cheap-samples`` times at each turn (its medians are the denominators
    of every ratio, and a loaded machine makes 50 ms figures jumpy).
    ``monitor``: a ``smiley-like monitor`` on ``ctx.database`` listens at
    ``ctx.endpoint`` before the clock starts; the time runs until the monitor
    has stored the end of the run, and the monitor is stopped before the
    database is inspected.
    """

    name: str
    command: Callable[[Context], list]
    records: bool = False
    timed_inside: bool = False
    cheap: bool = False
    monitor: bool = False
    by_default: bool = True


MODES = (
    Mode("untraced", timed_inside=True, cheap=True,
         command=lambda c: [c.python, DRIVER, c.timing_file, c.script, *c.args]),
    Mode("noop-settrace", timed_inside=True, cheap=True,
         command=lambda c: [c.python, DRIVER, "--noop", c.timing_file, c.script, *c.args]),
    # CPython's trace hook with a C function that records nothing: the floor
    # under the compiled tracer, with and without line events.
    Mode("null-c-tracer", timed_inside=True, cheap=True,
         command=lambda c: [c.python, DRIVER, "--null-c", c.timing_file, c.script, *c.args]),
    Mode("null-c-tracer --calls-only", timed_inside=True, cheap=True,
         command=lambda c: [c.python, DRIVER, "--null-c-calls", c.timing_file, c.script,
                            *c.args]),
    # Python 3.11's --calls-only hook: a frame evaluation function (PEP 523)
    # that records nothing.
    Mode("null-frame-eval", timed_inside=True, cheap=True,
         by_default=sys.version_info < (3, 12),
         command=lambda c: [c.python, DRIVER, "--null-frame-eval", c.timing_file, c.script,
                            *c.args]),
    # smiley-like's default tracer is the compiled one when it is built; the
    # Python tracer is measured beside it with --tracer python.
    Mode("smiley-like", records=True,
         command=lambda c: [c.smiley, "run", "--database", c.database, c.script, *c.args]),
    Mode("smiley-like --no-locals", records=True,
         command=lambda c: [c.smiley, "run", "--no-locals", "--database", c.database,
                            c.script, *c.args]),
    Mode("smiley-like --calls-only", records=True,
         command=lambda c: [c.smiley, "run", "--calls-only", "--database", c.database,
                            c.script, *c.args]),
    # On 3.12+ the compiled tracer hears of events through sys.monitoring, and
    # with --calls-only on 3.11 through the frame evaluation hook; the same
    # tracer on sys.settrace beside it (on 3.11 the default without
    # --calls-only).
    Mode("smiley-like --hook settrace", records=True, by_default=sys.version_info >= (3, 12),
         command=lambda c: [c.smiley, "run", "--hook", "settrace", "--database", c.database,
                            c.script, *c.args]),
    Mode("smiley-like --calls-only --hook settrace", records=True,
         command=lambda c: [c.smiley, "run", "--calls-only", "--hook", "settrace",
                            "--database", c.database, c.script, *c.args]),
    Mode("smiley-like --tracer python", records=True,
         command=lambda c: [c.smiley, "run", "--tracer", "python", "--database", c.database,
                            c.script, *c.args]),
    Mode("smiley-like --tracer python --no-locals", records=True,
         command=lambda c: [c.smiley, "run", "--tracer", "python", "--no-locals",
                            "--database", c.database, c.script, *c.args]),
    Mode("smiley-like --remote", records=True, monitor=True,
         command=lambda c: [c.smiley, "run", "--remote", "--socket", c.endpoint, c.script,
                            *c.args]),
)
MODE_BY_NAME = {mode.name: mode for mode in MODES}
BASE_MODE = "untraced"
MIN_SIZED_EVENTS = 1000  # fewer, and bytes per event are not averaged
FLOOR_MODE = "noop-settrace"


# -- running one measurement ------------------------------------------------

def clean_environment():
    """The environment for every subprocess: no smiley-like settings, fixed hashing."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SMILEY_LIKE_")}
    # String hashing decides set order; fix it so every run does the same work.
    env["PYTHONHASHSEED"] = "0"
    return env


def measure(mode, workload, args, config, list_check=False):
    """Run *workload* once under *mode*; return a record of what happened.

    With *list_check*, a recording mode's event count is also read back
    through ``smiley-like list`` and compared.
    """
    record = {"workload": workload, "mode": mode.name, "ok": False}
    # A fresh directory per run: its database, its timing file, and a cwd
    # without setup.cfg or tox.ini, which smiley-like would read settings from.
    with tempfile.TemporaryDirectory(prefix="smiley-bench-") as scratch:
        ctx = Context(python=config.python, smiley=config.smiley,
                      script=os.path.join(WORKLOAD_DIR, workload + ".py"), args=args,
                      database=os.path.join(scratch, "runs.db"),
                      timing_file=os.path.join(scratch, "timing.json"),
                      endpoint=f"ipc://{scratch}/monitor.sock")
        argv = mode.command(ctx)
        record["argv"] = argv
        monitor = start_monitor(ctx, config) if mode.monitor else None
        start = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=scratch, env=config.env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=config.timeout)
            if monitor is not None:
                wait_until_stored(ctx.database, config.timeout)
        except subprocess.TimeoutExpired:
            record["error"] = f"timed out after {config.timeout:g} s"
            return record
        except OSError as exc:
            record["error"] = f"could not start: {exc}"
            return record
        finally:
            if monitor is not None:
                monitor.terminate()
                monitor.wait()
        record["wall"] = time.perf_counter() - start
        record["output"] = last_line(proc.stdout)
        if proc.stderr.strip():
            record["stderr"] = proc.stderr[-2000:]
        if proc.returncode != 0:
            record["error"] = f"exit status {proc.returncode}: {last_line(proc.stderr)}"
            return record
        if mode.timed_inside:
            record["inside"] = read_timing(ctx.timing_file)
        if mode.records:
            record.update(inspect_database(ctx.database))
            notes = [line for line in proc.stderr.splitlines()
                     if line.startswith("smiley-like:")]
            if notes:
                record.setdefault("problems", []).extend(notes)
            if list_check and "events" in record:
                record["list_events"] = listed_events(config, ctx.database)
                if record["list_events"] != record["events"]:
                    record.setdefault("problems", []).append(
                        f"'smiley-like list' shows {record['list_events']} events, "
                        f"the database {record['events']}")
    record["ok"] = "error" not in record
    return record


def start_monitor(ctx, config):
    """A ``smiley-like monitor --quiet`` on the measurement's database, once it listens."""
    monitor = subprocess.Popen([ctx.smiley, "monitor", "--quiet", "--database", ctx.database,
                                "--socket", ctx.endpoint], env=config.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if "listening" not in monitor.stderr.readline():
        monitor.kill()
        raise OSError("the monitor did not start")
    return monitor


def wait_until_stored(database, timeout):
    """Poll the monitor's database until the run has ended there."""
    deadline = time.monotonic() + timeout
    with sqlite3.connect(database, timeout=timeout) as conn:
        while conn.execute("SELECT count(*) FROM run WHERE status != 'running'"
                           ).fetchone()[0] == 0:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("monitor", timeout)
            time.sleep(0.005)


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def read_timing(path):
    try:
        with open(path) as handle:
            return json.load(handle)["seconds"]
    except (OSError, ValueError, KeyError):
        return None


def inspect_database(path):
    """Event count, loss, status and on-disk size of the one run in *path*."""
    if not os.path.exists(path):
        return {"error": "no database was written"}
    try:
        conn = sqlite3.connect(path)
        try:
            runs = conn.execute("SELECT event_count, lost_events, status, exit_code, "
                                "started_at, ended_at FROM run").fetchall()
            chunk_events = conn.execute("SELECT COALESCE(SUM(count), 0) FROM chunk").fetchone()[0]
            # Fold the write-ahead log into the main file, so its size is what is kept.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return {"error": f"cannot read the database: {exc}"}
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    if len(runs) != 1:
        return {"error": f"expected one run in the database, found {len(runs)}", "bytes": size}
    events, lost, status, exit_code, started, ended = runs[0]
    found = {"events": events, "lost": lost, "status": status, "bytes": size,
             "chunk_events": chunk_events,
             "recorded_duration": ended - started if ended and started else None}
    problems = []
    if status != "finished" or exit_code != 0:
        problems.append(f"run status {status!r}, exit code {exit_code}")
    if lost:
        problems.append(f"{lost} events lost")
    if chunk_events != events:
        problems.append(f"run.event_count {events} but chunks hold {chunk_events}")
    if problems:
        found["problems"] = problems
    return found


def listed_events(config, database):
    """The "Events" column of ``smiley-like list -f json``, as a cross-check."""
    try:
        proc = subprocess.run([config.smiley, "list", "-f", "json", "--database", database],
                              env=config.env, text=True, capture_output=True,
                              timeout=config.timeout)
        rows = json.loads(proc.stdout)
        return rows[0]["Events"] if len(rows) == 1 else None
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError):
        return None


# -- the measurement plan ---------------------------------------------------

def workload_args(name, preset):
    if name == EMPTY or preset == "full":
        return []
    default, quick = WORKLOADS[name]
    return [str(quick if preset == "quick" else default)]


def run_all(config):
    """Interleave: every repetition runs every workload under every mode, in order.

    The empty script runs under every mode just before each workload, so the
    start-up figure subtracted from a mode is a median of many samples taken
    among the measurements it corrects.
    """
    records = []
    for mode in config.modes:  # warm-up: file caches and .pyc files, not counted
        measure(mode, EMPTY, [], config)
    for rep in range(config.repeat):
        for workload in config.workloads:
            for name in (EMPTY, workload):
                records += run_slot(name, rep, config)
    check_outputs(records)
    return records


def run_slot(workload, rep, config):
    """One workload under every mode in turn; report failures as they happen."""
    args = workload_args(workload, config.preset)
    list_check = config.check_list and rep == 0 and workload != EMPTY
    records = []
    progress = []
    for mode in config.modes:
        walls = []
        for _ in range(config.cheap_samples if mode.cheap else 1):
            record = measure(mode, workload, args, config, list_check=list_check)
            record["rep"] = rep
            records.append(record)
            report_trouble(record, rep)
            if record["ok"]:
                walls.append(record["wall"])
        progress.append(f"{mode.name} {statistics.median(walls):.3f}s" if walls
                        else f"{mode.name} FAILED")
    print(f"[{rep + 1}/{config.repeat}] {workload:<11} " + "  ".join(progress),
          file=sys.stderr, flush=True)
    return records


def report_trouble(record, rep):
    where = f"{record['workload']} under {record['mode']}, repetition {rep + 1}"
    if not record["ok"]:
        print(f"FAILED: {where}: {record['error']}", file=sys.stderr)
    for problem in record.get("problems", []):
        print(f"problem: {where}: {problem}", file=sys.stderr)


def check_outputs(records):
    """Every mode must print the same checksum as the untraced run; flag those that do not."""
    expected = {}
    for record in records:
        if record["ok"] and record["mode"] == BASE_MODE:
            expected.setdefault(record["workload"], record["output"])
    for record in records:
        want = expected.get(record["workload"])
        if record["ok"] and want is not None and record["output"] != want:
            record.setdefault("problems", []).append(
                f"output {record['output']!r} differs from untraced {want!r}")
            print(f"problem: {record['workload']} under {record['mode']}: "
                  f"{record['problems'][-1]}", file=sys.stderr)


# -- analysis ---------------------------------------------------------------

def median_of(records, key):
    values = [r[key] for r in records if r.get(key) is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b else None


def analyse(records, config):
    """Medians per workload and mode, net of start-up, with ratios and storage figures."""
    def ok(workload, mode):
        return [r for r in records if r["ok"] and r["workload"] == workload
                and r["mode"] == mode.name]

    samples = {mode.name: ok(EMPTY, mode) for mode in config.modes}
    startup = {name: median_of(runs, "wall") for name, runs in samples.items()}
    results = {}
    for workload in config.workloads:
        rows = {}
        for mode in config.modes:
            runs = ok(workload, mode)
            raw = median_of(runs, "wall")
            base = startup[mode.name]
            per_event = [r["bytes"] / r["events"] for r in runs if r.get("events")]
            rows[mode.name] = {
                "runs": len(runs),
                "raw": raw,
                "net": raw - base if raw is not None and base is not None else None,
                "inside": median_of(runs, "inside"),
                "events": median_of(runs, "events"),
                "bytes_per_event": statistics.median(per_event) if per_event else None,
                "problems": sorted({p for r in runs for p in r.get("problems", [])}),
            }
        untraced = rows.get(BASE_MODE, {}).get("net")
        floor = rows.get(FLOOR_MODE, {}).get("net")
        for row in rows.values():
            row["x_untraced"] = ratio(row["net"], untraced)
            row["x_noop"] = ratio(row["net"], floor)
            row["events_per_s_untraced"] = ratio(row["events"], untraced)
            row["events_per_s_traced"] = ratio(row["events"], row["net"])
        results[workload] = rows
    startup = {name: {"median": startup[name], "samples": len(samples[name])}
               for name in startup}
    return startup, results


def summarise(results, config):
    summary = {}
    for mode in config.modes:
        rows = {w: results[w][mode.name] for w in results}
        ratios = {w: row["x_untraced"] for w, row in rows.items() if row["x_untraced"]}
        floors = [row["x_noop"] for row in rows.values() if row["x_noop"]]
        # A run of a handful of events (--calls-only on a workload of one call)
        # is a page or two of database: not a size per event.
        per_event = [row["bytes_per_event"] for row in rows.values()
                     if row["bytes_per_event"] and (row["events"] or 0) >= MIN_SIZED_EVENTS]
        worst = max(ratios, key=ratios.get) if ratios else None
        summary[mode.name] = {
            "median_x_untraced": statistics.median(ratios.values()) if ratios else None,
            "max_x_untraced": ratios[worst] if worst else None,
            "max_workload": worst,
            "median_x_noop": statistics.median(floors) if floors else None,
            "mean_bytes_per_event": statistics.mean(per_event) if per_event else None,
        }
    return summary


# -- output -----------------------------------------------------------------

def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(headers, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def print_header(config):
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()} "
          f"({config.python})")
    print(f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs "
          f"(nproc {nproc()}), load average at start {load_average()}")
    print(f"smiley-like: {config.smiley} ({config.smiley_version}); source {config.source}")
    print(f"settings: {config.preset} sizes, {config.repeat} repetition(s) "
          f"({config.cheap_samples} samples each for fast modes), modes "
          f"{', '.join(m.name for m in config.modes)}")


def print_report(startup, results, summary, config, elapsed):
    print()
    print("start-up (empty.py), median wall seconds, subtracted from every figure below:")
    print(table(["mode", "raw s", "samples"],
                [[name, fmt(row["median"], ".3f"), row["samples"]]
                 for name, row in startup.items()]))
    headers = ["mode", "net s", "raw s", "in-proc s", "x untraced", "x no-op", "events",
               "ev/s untraced", "ev/s traced", "B/event"]
    for workload, rows in results.items():
        size = " ".join(workload_args(workload, config.preset)) or script_size(workload)
        print(f"\n{workload} (size {size})")
        body = []
        for name, row in rows.items():
            expected = config.repeat * (config.cheap_samples if MODE_BY_NAME[name].cheap else 1)
            runs = f" ({row['runs']} of {expected} ok)" if row["runs"] != expected else ""
            body.append([name + runs, fmt(row["net"], ".3f"), fmt(row["raw"], ".3f"),
                         fmt(row["inside"], ".3f"), fmt(row["x_untraced"], ".2f"),
                         fmt(row["x_noop"], ".2f"), fmt(row["events"], ",.0f"),
                         fmt(row["events_per_s_untraced"], ",.0f"),
                         fmt(row["events_per_s_traced"], ",.0f"),
                         fmt(row["bytes_per_event"], ".2f")])
        print(table(headers, body))
        for name, row in rows.items():
            for problem in row["problems"]:
                print(f"  ! {name}: {problem}")
    print("\nsummary across workloads (ratios of net medians):")
    print(table(["mode", "median x untraced", "max x untraced", "median x no-op",
                 "mean B/event"],
                [[name, fmt(s["median_x_untraced"], ".2f"),
                  f"{fmt(s['max_x_untraced'], '.2f')} ({s['max_workload'] or '-'})",
                  fmt(s["median_x_noop"], ".2f"), fmt(s["mean_bytes_per_event"], ".2f")]
                 for name, s in summary.items()]))
    print(f"(mean B/event: over the workloads that recorded {MIN_SIZED_EVENTS:,} events or more)")
    print(f"\ntotal benchmark time {elapsed:.0f} s")


def script_size(workload):
    """The SIZE constant a workload script uses when given no size."""
    with open(os.path.join(WORKLOAD_DIR, workload + ".py")) as handle:
        for line in handle:
            if line.startswith("SIZE = "):
                return line.split("=", 1)[1].strip()
    return "?"


def nproc():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def load_average():
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def describe_source():
    """The git commit of the code under test, and whether it has local changes."""
    try:
        commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", HERE, "status", "--porcelain", "--",
                                "../smiley_like"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"git {commit}{' with local changes to smiley_like/' if dirty else ''}" \
        if commit else "unknown"


def smiley_version(smiley, env):
    try:
        proc = subprocess.run([smiley, "--version"], capture_output=True, text=True,
                              env=env, timeout=60)
        return (proc.stdout.strip() or proc.stderr.strip()) or "version unknown"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run: {exc}"


# -- command line -----------------------------------------------------------

def find_smiley():
    """smiley-like next to this interpreter (the same virtualenv), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "smiley-like")
    return beside if os.path.exists(beside) else shutil.which("smiley-like") or beside


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="repetitions of every measurement (default: 5; 1 with --quick)")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true",
                       help="one repetition at small sizes: a smoke test")
    sizes.add_argument("--full", action="store_true",
                       help="the scripts' own sizes (0.3-0.5 s untraced); about 3x longer")
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS),
                        metavar="NAME", help="run only this workload (repeatable; "
                        f"choices: {', '.join(WORKLOADS)})")
    parser.add_argument("--mode", action="append", choices=list(MODE_BY_NAME), metavar="NAME",
                        help=f"run only this mode (repeatable; choices: "
                        f"{', '.join(repr(m) for m in MODE_BY_NAME)})")
    parser.add_argument("--cheap-samples", type=int, default=5, metavar="N",
                        help="runs of the fast modes (untraced, the no-op tracers) at each turn "
                             "(default: %(default)s)")
    parser.add_argument("--json", metavar="FILE", help="write every raw measurement here")
    parser.add_argument("--smiley", default=find_smiley(), metavar="PATH",
                        help="the smiley-like command (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                        help="give up on one run after this long (default: %(default)s)")
    parser.add_argument("--no-list-check", dest="check_list", action="store_false",
                        help="in the first repetition, do not compare event counts "
                             "with 'smiley-like list'")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1 or args.cheap_samples < 1:
        parser.error("--repeat and --cheap-samples must be at least 1")
    return args


@dataclasses.dataclass
class Config:
    python: str
    smiley: str
    env: dict
    preset: str
    repeat: int
    workloads: list
    modes: list
    timeout: float
    check_list: bool
    cheap_samples: int
    smiley_version: str = ""
    source: str = ""


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    env = clean_environment()
    chosen = set(args.mode or [mode.name for mode in MODES if mode.by_default])
    config = Config(
        python=sys.executable, smiley=args.smiley, env=env,
        preset="quick" if args.quick else "full" if args.full else "default",
        repeat=args.repeat,
        workloads=[w for w in WORKLOADS if w in set(args.workload or WORKLOADS)],
        modes=[mode for mode in MODES if mode.name in chosen],
        timeout=args.timeout, check_list=args.check_list, cheap_samples=args.cheap_samples,
        smiley_version=smiley_version(args.smiley, env), source=describe_source())
    print_header(config)
    sys.stdout.flush()
    started = time.perf_counter()
    records = run_all(config)
    elapsed = time.perf_counter() - started
    startup, results = analyse(records, config)
    summary = summarise(results, config)
    print_report(startup, results, summary, config, elapsed)
    if args.json:
        write_json(args.json, config, records, startup, results, summary, elapsed)
    return 0 if all(r["ok"] for r in records) else 1


def write_json(path, config, records, startup, results, summary, elapsed):
    meta = {"command": [sys.executable, *sys.argv], "python": platform.python_version(),
            "platform": platform.platform(), "nproc": nproc(), "load_average": load_average(),
            "smiley": config.smiley, "smiley_version": config.smiley_version,
            "source": config.source, "preset": config.preset, "repeat": config.repeat,
            "cheap_samples": config.cheap_samples,
            "elapsed": elapsed}
    with open(path, "w") as handle:
        json.dump({"meta": meta, "startup": startup, "results": results, "summary": summary,
                   "measurements": records}, handle, indent=1)


if __name__ == "__main__":
    sys.exit(main())
