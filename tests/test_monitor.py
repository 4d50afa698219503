"""The monitor and ``run --remote``: real monitor processes, real sockets, real faults."""

import contextlib
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import zmq

from smiley_like.events import CALL, LINE, RETURN
from smiley_like.monitor import Monitor
from smiley_like.store import queries
from smiley_like.store.engine import open_store
from smiley_like.store.writer import StoreWriter
from smiley_like.wire import codec

from conftest import python

PROGRAM = """\
import sys, threading

class Account:
    def __init__(self, owner):
        self.owner = owner
        self.history = []

    def deposit(self, amount):
        if amount <= 0:
            raise ValueError(f"bad amount {amount}")
        self.history.append(amount)
        return sum(self.history)

def spend(account, amounts):
    for amount in amounts:
        try:
            account.deposit(amount)
        except ValueError as error:
            print("refused:", error)

class Worker(threading.Thread):
    def __repr__(self):  # threading's own says "started" or "stopped": a race
        return f"<Worker {self.name}>"

account = Account("ann")
worker = Worker(target=spend, args=(account, [5, -1, 7]), name="worker")
worker.start()
worker.join()
spend(account, range(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
print(len(account.history))
sys.exit(3)
"""

# A steady program: N ticks, a little sleep each, so a monitor can come and go meanwhile.
TICKING = """\
import sys, time
def tick(i):
    return i * 2
print("ticking", flush=True)
for i in range({n}):
    tick(i)
    time.sleep({pause})
print("done", flush=True)
"""

_NOISE = re.compile(r"0x[0-9a-f]+")  # addresses differ from process to process


def _masked(value):
    if isinstance(value, str):
        return _NOISE.sub("?", value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def stream(events):
    """What each thread recorded, apart from times, addresses and idents (they differ per process).

    Threads interleave differently from run to run, so each is compared on its own.
    """
    threads = {}
    for e in events:
        threads.setdefault(e.thread_no, []).append(
            (e.kind, e.depth, e.code.name, e.line_no, _masked(e.value), _masked(e.changes),
             e.raised))
    return threads


def wait_for_run(smiley, run="last", status=None, timeout=60):
    """The run once it has ended (or reached *status*); the monitor stores asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            store = smiley.store()
            try:
                row = queries.run(store, queries.resolve_run(store, run))
            finally:
                store.close()
            if (row.status == status) if status else row.status != "running":
                return row
        assert time.monotonic() < deadline, f"run {run} never got to {status or 'its end'}"
        time.sleep(0.1)


def ticking_locally(smiley, n, pause):
    """Write the ticking program and record it locally: (its output, events it records)."""
    smiley.script(TICKING.format(n=n, pause=pause))
    local = smiley("run", "prog.py", check=0)
    return local.stdout, smiley.last_run().event_count


def remote(smiley, endpoint, *args, check=None, flush_timeout=None):
    options = ["--remote", "--socket", endpoint]
    if flush_timeout is not None:
        options += ["--flush-timeout", str(flush_timeout)]
    return smiley("run", *options, *args, check=check)


def popen_remote(smiley, endpoint, *args, flush_timeout=5):
    return subprocess.Popen(
        [sys.executable, "-m", "smiley_like", "run", "--remote", "--socket", endpoint,
         "--flush-timeout", str(flush_timeout), *args],
        cwd=smiley.directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=smiley.env())


def test_a_remote_run_is_stored_as_a_local_one_is(smiley, monitor):
    watcher = monitor().start()
    smiley.script(PROGRAM)
    plain = python(smiley.directory, "prog.py")
    sent = remote(smiley, watcher.endpoint, "prog.py", check=3)
    assert (sent.stdout, sent.stderr) == (plain.stdout, plain.stderr)
    remote_run = wait_for_run(smiley)
    local = smiley("run", "prog.py", check=3)
    assert local.stdout == plain.stdout
    local_run = smiley.last_run()
    assert remote_run.id != local_run.id
    assert (remote_run.status, remote_run.exit_code, remote_run.lost_events) == \
        ("finished", 3, 0)
    assert remote_run.event_count == local_run.event_count > 100
    assert stream(smiley.events(remote_run.id)) == stream(smiley.events(local_run.id))
    assert watcher.stop() == 0
    out = watcher.out
    assert f"[{remote_run.id[:8]}] started" in out
    assert f"[{remote_run.id[:8]}] ended    exit 3, {remote_run.event_count} events stored" in out
    assert "-> Account.deposit(self=<__main__.Account object at" in out  # the events, live


def test_concurrent_runs_from_several_processes(smiley, monitor):
    watcher = monitor("--quiet").start()
    smiley.script(PROGRAM)
    runs = [popen_remote(smiley, watcher.endpoint, "prog.py", str(n)) for n in (100, 200, 300)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [3, 3, 3]
    assert [out.splitlines()[-1] for out, _ in outputs] == ["101", "201", "301"]
    assert all(err == "" for _, err in outputs)
    watcher.wait_for(lambda: watcher.out.count("ended") == 3, "the runs to end")
    assert watcher.stop() == 0
    store = smiley.store()
    try:
        rows = queries.runs(store)
    finally:
        store.close()
    assert sorted(row.command for row in rows) == \
        ['["prog.py", "100"]', '["prog.py", "200"]', '["prog.py", "300"]']
    assert all(row.status == "finished" and row.lost_events == 0 for row in rows)
    for row in rows:
        deposits = [e for e in smiley.events(row.id) if e.kind == 0
                    and e.code.name == "Account.deposit"]
        assert len(deposits) == 3 + int(eval(row.command)[1])
    assert watcher.out.count("started") == watcher.out.count("ended    exit 3") == 3
    assert "->" not in watcher.out  # --quiet: starts and ends only


@pytest.mark.parametrize("ticks, pause, flush_timeout, late", [
    # More events than the sender holds: the program waits for the monitor.
    (20000, 0, 30, 1.0),
    # Far fewer: nothing is given up, however short the flush timeout and late the monitor.
    (40, 0.1, 1, 2.5),
], ids=["busy", "slow"])
def test_a_monitor_started_after_the_run_gets_all_of_it(smiley, monitor, ticks, pause,
                                                        flush_timeout, late):
    output, expected = ticking_locally(smiley, ticks, pause)
    watcher = monitor()
    process = popen_remote(smiley, watcher.endpoint, "prog.py", flush_timeout=flush_timeout)
    assert process.stdout.readline() == "ticking\n"
    time.sleep(late)
    watcher.start()
    out, err = process.communicate(timeout=120)
    assert (process.returncode, "ticking\n" + out, err) == (0, output, "")
    run = wait_for_run(smiley)
    assert (run.status, run.event_count, run.lost_events) == ("finished", expected, 0)
    assert run.command == '["prog.py"]'  # the start of the run waited for the monitor too


def test_no_monitor_the_program_runs_as_usual_and_says_so_once(smiley):
    smiley.script(TICKING.format(n=30000, pause=0))
    plain = python(smiley.directory, "prog.py")
    started = time.monotonic()
    result = smiley("run", "--remote", "--socket", "tcp://127.0.0.1:9", "--flush-timeout",
                    "0.5", "prog.py")
    elapsed = time.monotonic() - started
    assert (result.returncode, result.stdout) == (0, plain.stdout)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smiley-like: no monitor was listening at tcp://127.0.0.1:9")
    assert re.search(r"\((\d+) events;", lines[0]).group(1) != "0"
    assert elapsed < 60  # waits a bounded time, twice at most: mid-run and at exit


def test_a_monitor_killed_and_restarted_mid_run(smiley, monitor):
    _, expected = ticking_locally(smiley, 1500, 0.002)
    first = monitor("--quiet").start()
    process = popen_remote(smiley, first.endpoint, "prog.py", flush_timeout=30)
    assert process.stdout.readline() == "ticking\n"
    first.wait_for(lambda: "started" in first.out, "the run to start")
    time.sleep(1.0)
    first.kill()
    time.sleep(0.5)
    second = monitor("--quiet", endpoint=first.endpoint).start()
    out, err = process.communicate(timeout=120)
    assert (process.returncode, out, err) == (0, "done\n", "")
    run = wait_for_run(smiley)
    assert run.status == "finished" and run.exit_code == 0
    # Whatever was in flight when the monitor died is counted, not lost silently.
    assert run.event_count + run.lost_events == expected
    assert run.event_count > 0
    ticks = [e.value["i"] for e in smiley.events(run.id) if e.kind == 0 and
             e.code.name == "tick"]
    assert ticks[0] == "0" and ticks[-1] == "1499"
    listed = smiley("list", check=0).stdout
    if run.lost_events:
        assert f"incomplete: {run.lost_events} events lost" in listed
        assert "never arrived" in second.err
    else:
        assert "incomplete" not in listed
    # The sender repeated the start of the run and every definition to the new monitor.
    assert f"[{run.id[:8]}] started  prog.py" in second.out
    assert second.stop() == 0
    assert "<unknown code" not in smiley("replay", run.id, check=0).stdout


def test_garbage_on_the_socket_is_counted_and_logged_once_per_sender(smiley, monitor):
    watcher = monitor().start()  # printing every event: the printer must survive it all
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.connect(watcher.endpoint)
    hostile = "f" * 32

    def events(seq, *items, defs=()):
        header = {"kind": "events", "run": hostile, "pid": 1, "batch": 1, "seq": seq,
                  "count": len(items)}
        return [codec.MAGIC, codec.pack(header), codec.pack(list(defs)),
                codec.pack(list(items))]

    garbage = [
        [b"hello"],
        [b"GET / HTTP/1.1\r\n\r\n"],
        [b"smiley-like/99", b"\x80"],
        events(0, [0]),  # a call with nothing in it
        events(2**63, [LINE, 0, 1, 2, None]),  # a sequence number no database holds
        events(0, [LINE, 0, [1], 2, None]),  # a time that is a list
        events(0, [LINE, 0, 11]),  # a line event cut short
        events(0, [LINE, 0, 1, 2, None], defs=[["file", 1, "/x.py", None, 5]]),
        events(0, [CALL, 0, 1, 2, {}, "f"]),  # a code id that is text
        codec.encode_start(hostile, 1, {"argv": ["x"], "started_at": [1, 2]}),
        codec.encode_end(hostile, 1, 3, {"status": "finished", "sent": 2**64 - 1}),
    ]
    for frames in garbage:
        push.send_multipart(frames)
    # Well-formed enough to store, odd enough that readers must cope: a line whose
    # changes are text, a thread without a name.
    push.send_multipart(events(0, [LINE, 0, 1, 2, "not a map"], [LINE, 0, 2, 3, None],
                               defs=[["thread", 0, None, None, None, None]]))
    push.close(linger=5000)
    context.term()
    smiley.script(PROGRAM)
    remote(smiley, watcher.endpoint, "prog.py", check=3)
    run = wait_for_run(smiley)
    assert run.status == "finished" and run.event_count > 100 and run.lost_events == 0
    assert watcher.stop() == 0
    err = watcher.err
    assert err.count("ignoring a message that is not ours (from an unknown sender)") == 1
    assert err.count(f"ignoring a message that is not ours (from run {hostile} pid 1)") == 1
    assert f"ignored {len(garbage)} messages that were not smiley-like batches" in err
    assert "Traceback" not in err and "Traceback" not in watcher.out
    assert f"[{run.id[:8]}] ended    exit 3" in watcher.out  # the printer lived on
    odd = smiley("replay", hostile, check=0).stdout.splitlines()
    assert len(odd) == 2 and odd[0].split()[:2] == ["0", "?:0"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_the_monitor_keeps_what_it_stored_and_marks_open_runs(smiley, monitor, sig):
    watcher = monitor("--quiet").start()
    smiley.script(TICKING.format(n=2000, pause=0.002))
    process = popen_remote(smiley, watcher.endpoint, "prog.py", flush_timeout=1)
    assert process.stdout.readline() == "ticking\n"
    running = wait_for_run(smiley, status="running")
    watcher.wait_for(lambda: "started" in watcher.out, "the run to start")
    time.sleep(1.0)
    assert watcher.stop(sig, timeout=30) == 0
    run = wait_for_run(smiley, running.id)
    assert run.status == "interrupted" and run.ended_at is None
    assert "the monitor stopped" in run.notes
    stored = run.event_count
    assert stored > 0
    assert len(smiley.events(run.id)) == stored  # every event it took is there
    assert f"[{run.id[:8]}] interrupted" in watcher.out
    out, err = process.communicate(timeout=120)
    assert (process.returncode, out) == (0, "done\n")  # the program goes on, and ends well
    assert re.fullmatch(r"smiley-like: \d+ events were not recorded in the monitor at \S+\n",
                        err), err
    assert "interrupted: the recording stopped before the program ended" in \
        smiley("list", check=0).stdout


def test_a_second_monitor_on_the_same_address_is_refused(smiley, monitor):
    first = monitor().start()
    second = monitor(endpoint=first.endpoint).start(wait=False)
    assert second.process.wait(60) == 2
    assert second.err == (f"smiley-like: cannot listen on {first.endpoint}: address in use "
                          "(is another monitor running?)\n")
    assert first.process.poll() is None
    assert first.stop() == 0


def test_summary_shows_a_status_line_per_run(smiley, monitor):
    watcher = monitor("--summary", "--refresh", "0.2").start()
    smiley.script(TICKING.format(n=1000, pause=0.002))
    remote(smiley, watcher.endpoint, "prog.py", check=0)
    run = wait_for_run(smiley)
    assert watcher.stop() == 0
    label = run.id[:8]
    status = [line for line in watcher.out.splitlines()
              if line.startswith(f"[{label}] prog.py")]
    assert status, watcher.out
    assert re.search(r" [\d,]+ events +[\d,]+/s  prog.py:\d in (tick|<module>)", status[-1])
    assert f"[{label}] ended    exit 0, {run.event_count} events stored" in watcher.out


def test_a_terminal_that_cannot_keep_up_skips_and_says_so(smiley, monitor):
    watcher = monitor().start()
    smiley.script(TICKING.format(n=60000, pause=0))
    remote(smiley, watcher.endpoint, "prog.py", check=0)
    run = wait_for_run(smiley)
    assert watcher.stop() == 0
    assert run.lost_events == 0 and run.event_count > 200000
    out = watcher.out
    assert "events not shown: the terminal could not keep up (all are stored)" in out
    assert len(out.splitlines()) < run.event_count
    assert len(smiley.events(run.id)) == run.event_count


def test_a_locked_database_holds_the_senders_back_and_loses_nothing(smiley, monitor):
    _, expected = ticking_locally(smiley, 3000, 0.0005)
    watcher = monitor("--quiet", env={"SMILEY_LIKE_BUSY_TIMEOUT": "0.2"}).start()
    blocker = sqlite3.connect(smiley.database, timeout=30)
    try:
        process = popen_remote(smiley, watcher.endpoint, "prog.py", flush_timeout=30)
        assert process.stdout.readline() == "ticking\n"
        blocker.execute("BEGIN EXCLUSIVE")
        time.sleep(2.0)
        blocker.rollback()
    finally:
        blocker.close()
    out, err = process.communicate(timeout=120)
    assert (process.returncode, out, err) == (0, "done\n", "")
    run = wait_for_run(smiley)
    assert (run.event_count, run.lost_events) == (expected, 0)
    assert watcher.stop() == 0
    assert watcher.err.count("database is locked") == 1



def test_a_batch_for_a_run_never_seen_creates_it_and_the_end_fills_it_in(tmp_path):
    """A monitor with a fresh database, joining mid-run: what it gets is stored and counted."""
    store = open_store(str(tmp_path / "late.db"), create=True)
    try:
        writer = StoreWriter(store)
        monitor = Monitor(None, [writer])
        run_id = "ab" * 16
        defs = [("file", 1, "/x/prog.py", None, None), ("code", 1, 1, "work", 3),
                ("thread", 0, 1, 1, "MainThread", 0)]
        # Events 0..99 went to another monitor; this one gets 100..102 and the end.
        events = [(LINE, 0, 10, 4, None), (RETURN, 0, 11, 5, "7", None),
                  (CALL, 0, 12, 3, {"n": "2"}, 1)]
        handled = [monitor.handle(codec.encode_events(run_id, 42, 9, 100, defs, events)),
                   monitor.handle(codec.encode_end(run_id, 42, 10, {
                       "status": "finished", "exit_code": 0, "sent": 103, "lost": 0,
                       "ended_at": 5.0}))]
        assert all(message is not None for message in handled) and monitor.rejected == 0
        writer.close()
        run = queries.run(store, run_id)
        assert (run.pid, run.status, run.exit_code, run.event_count, run.lost_events) == \
            (42, "finished", 0, 3, 100)
        stored = list(queries.events(store, run_id))
        assert [(e.seq, e.kind, e.code.name) for e in stored] == \
            [(100, LINE, "<unknown code 0>"), (101, RETURN, "<unknown code 0>"),
             (102, CALL, "work")]
        assert stored[2].value == {"n": "2"}
    finally:
        store.close()


def test_stopping_the_monitor_while_the_database_is_locked(smiley, monitor):
    watcher = monitor("--quiet", env={"SMILEY_LIKE_BUSY_TIMEOUT": "0.2"}).start()
    smiley.script(TICKING.format(n=2000, pause=0.001))
    process = popen_remote(smiley, watcher.endpoint, "prog.py", flush_timeout=1)
    assert process.stdout.readline() == "ticking\n"
    running = wait_for_run(smiley, status="running")
    blocker = sqlite3.connect(smiley.database, timeout=30)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        time.sleep(1.0)
        assert watcher.stop(timeout=60) == 0  # not stuck retrying, not a traceback
    finally:
        blocker.rollback()
        blocker.close()
    err = watcher.err
    assert "database is locked" in err and "Traceback" not in err
    assert re.search(r"smiley-like: \d+ events could not be stored", err)
    out, err = process.communicate(timeout=120)
    assert (process.returncode, out) == (0, "done\n")  # whatever became of its events
    assert smiley.last_run().id == running.id  # the run is there, with what was stored


def test_a_killed_remote_program_is_told_from_a_blocked_one(smiley, monitor):
    watcher = monitor("--quiet", "--lost-after", "2").start()
    smiley.script("""\
        import time
        def block():
            time.sleep(4)  # no events, but the sender says it is alive
        print("blocking", flush=True)
        block()
        print("spinning", flush=True)
        while True:
            time.sleep(0.01)
        """)
    process = popen_remote(smiley, watcher.endpoint, "prog.py")
    assert process.stdout.readline() == "blocking\n"
    assert process.stdout.readline() == "spinning\n"
    run = wait_for_run(smiley, status="running")  # blocked 4 s, not given up after 2
    assert "interrupted" not in watcher.out
    process.kill()
    process.communicate(timeout=60)
    run = wait_for_run(smiley, run.id, status="interrupted")
    assert run.ended_at is None and "heard nothing from the program for 2 s" in run.notes
    watcher.wait_for(lambda: "interrupted: nothing heard from it for 2 s" in watcher.out,
                     "the monitor to give the run up")
    assert watcher.stop() == 0
