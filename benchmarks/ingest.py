"""Measure how fast ``smiley-like monitor`` stores events: one sender, then several at once.

Usage::

    python benchmarks/ingest.py [--events N] [--senders 1 3] [--workload text] [--repeat 3]

The events are real: a workload is recorded once in local mode, and its
stored batches (definitions, events exactly as the tracer packed them) are
sent again and again by sender processes, renumbered, as fast as the monitor
takes them.  The senders block at the high-water mark like a traced program
does, so the rate measured is the monitor's: receiving, decoding, walking the
call stacks, compressing and committing one chunk per batch into SQLite.

Time runs from the moment the senders are released to the moment the last
run is marked finished in the monitor's database.  Each configuration is
repeated and the median printed, with the monitor's peak RSS.
"""

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = os.path.join(HERE, "workloads")
BAR = 1_000_000  # events per second from one sender (issue 5; issue 3 asked for 500,000)


def smiley_command():
    found = shutil.which("smiley-like", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "smiley_like"]


def record_source(scratch, workload, size):
    """Record *workload* locally; return the database it is in."""
    database = os.path.join(scratch, "source.db")
    script = os.path.join(WORKLOADS, workload + ".py")
    subprocess.run([*smiley_command(), "run", "--database", database, script,
                    *([str(size)] if size else [])],
                   check=True, cwd=scratch, stdout=subprocess.DEVNULL)
    return database


def load_batches(database):
    """(definitions, [(count, packed events)]) of the one run in *database*."""
    from smiley_like.store import compression

    with sqlite3.connect(database) as conn:
        defs = [("file", no, path, digest, text) for no, path, digest, text in conn.execute(
            "SELECT f.file_no, f.path, f.hash, s.text FROM file f "
            "LEFT JOIN source s ON s.hash = f.hash")]
        defs += [("code", *row) for row in conn.execute(
            "SELECT code_id, file_no, name, first_line FROM code")]
        defs += [("thread", *row) for row in conn.execute(
            "SELECT thread_no, ident, native_id, name FROM thread")]
        batches = [(count, compression.decompress(events)) for count, events in conn.execute(
            "SELECT count, events FROM chunk ORDER BY seq")]
    return defs, batches


def send(endpoint, source, run_id, events):
    """Sender process: wait for a line on stdin, then send *events* events as one run."""
    import zmq

    from smiley_like.wire import codec

    defs, batches = load_batches(source)
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 64)
    push.connect(endpoint)
    pid = os.getpid()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    push.send_multipart(codec.encode_start(run_id, pid, {"argv": ["ingest", run_id]}))
    seq = batch = 0
    packed_defs = codec.pack(defs)
    while seq < events:
        for count, packed in batches:
            batch += 1
            header = {"run": run_id, "pid": pid, "batch": batch, "seq": seq, "count": count}
            push.send_multipart(codec.encode("events", header, packed_defs, packed))
            packed_defs = codec.pack([])
            seq += count
            if seq >= events:
                break
    push.send_multipart(codec.encode_end(run_id, pid, batch + 1,
                                         {"status": "finished", "exit_code": 0, "sent": seq,
                                          "lost": 0}))
    push.close(linger=-1)
    context.term()


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def measure(scratch, source, senders, events, round_no):
    """One monitor, *senders* concurrent runs of *events* each; return (events/s, peak RSS MB)."""
    database = os.path.join(scratch, f"ingest-{senders}-{round_no}.db")
    endpoint = f"ipc://{scratch}/monitor.sock"
    monitor = subprocess.Popen([*smiley_command(), "monitor", "--quiet", "--database",
                                database, "--socket", endpoint],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if "listening" not in monitor.stderr.readline():
            raise SystemExit("the monitor did not start")
        run_ids = [uuid.uuid4().hex for _ in range(senders)]
        procs = [subprocess.Popen([sys.executable, __file__, "--send", endpoint, source, run_id,
                                   str(events)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True) for run_id in run_ids]
        for proc in procs:
            proc.stdout.readline()
        started = time.perf_counter()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        with sqlite3.connect(database, timeout=30) as conn:
            while True:
                done = conn.execute(
                    "SELECT count(*), coalesce(sum(event_count), 0) FROM run "
                    f"WHERE status = 'finished' AND id IN ({','.join('?' * senders)})",
                    run_ids).fetchone()
                if done[0] == senders:
                    break
                time.sleep(0.01)
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.wait()
        rss = peak_rss_mb(monitor.pid)
        return done[1] / elapsed, rss, done[1]
    finally:
        monitor.terminate()
        monitor.wait()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--send":
        send(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3_000_000,
                        help="events per run from one sender (default: %(default)s; with "
                             "several senders each sends this divided by their number)")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--workload", default="text")
    parser.add_argument("--size", type=int, default=40000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smiley-ingest-") as scratch:
        source = record_source(scratch, args.workload, args.size)
        with sqlite3.connect(source) as conn:
            chunks, recorded = conn.execute("SELECT count(*), sum(count) FROM chunk").fetchone()
        print(f"events from: {args.workload} {args.size} ({recorded:,} events in {chunks} "
              f"batches, {recorded // chunks:,} per batch)")
        print(f"{'senders':>8} {'events':>12} {'events/s (median)':>18} {'min':>12} "
              f"{'max':>12} {'monitor peak RSS':>17}")
        for senders in args.senders:
            each = args.events // senders
            rates, rss_all = [], []
            for round_no in range(args.repeat):
                rate, rss, stored = measure(scratch, source, senders, each, round_no)
                rates.append(rate)
                rss_all.append(rss)
            print(f"{senders:>8} {stored:>12,} {statistics.median(rates):>18,.0f} "
                  f"{min(rates):>12,.0f} {max(rates):>12,.0f} {max(rss_all):>14.0f} MB")
        print(f"bar: {BAR:,} events/s from one sender")


if __name__ == "__main__":
    main()
