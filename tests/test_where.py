"""``where``, ``threads`` and the monitor's per-thread summary, on real runs of real programs."""

import json
import re
import signal
import subprocess
import sys
import time

from test_monitor import wait_for_run

# A worker blocked for good, a main thread busy for good: the classic hang.
HANGING = """\
import sys, threading, time

def wait_forever(gate):
    label = "waiting"
    gate.wait()

def spin(limit):
    total = 0
    for i in range(limit):
        total += i
        if i % 1000 == 0:
            time.sleep(0.001)
    return total

def main():
    gate = threading.Event()
    worker = threading.Thread(target=wait_forever, args=(gate,), name="stuck", daemon=True)
    worker.start()
    print("hanging", flush=True)
    while True:
        spin(5000)

main()
"""

ENDING = """\
import threading

def fail(code):
    raise ValueError(f"bad {code}")

def work(n):
    return n * 2

worker = threading.Thread(target=fail, args=(7,), name="failing")
worker.start()
worker.join()
print(work(21))
"""


def start(smiley, *options):
    smiley.script(HANGING)
    return subprocess.Popen(
        [sys.executable, "-m", "smiley_like", "run", *options, "prog.py"],
        cwd=smiley.directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=smiley.env())


def test_where_a_killed_program_was_in_each_thread(smiley):
    process = start(smiley, "--database", smiley.database)
    assert process.stdout.readline() == "hanging\n"
    wait_for_run(smiley, status="running")
    deadline = time.monotonic() + 60
    while "thread 1 stuck" not in (live := smiley("where", "last", check=0).stdout):
        assert time.monotonic() < deadline, live  # the worker's first batch is stored soon
        time.sleep(0.2)
    assert "(still being recorded)" in live
    assert re.search(r"thread 1 stuck \(ident \d+\): running, in wait_forever at line 5, "
                     r"last event [\d.]+ s ago", live)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    run = wait_for_run(smiley)
    assert run.status == "abrupt"
    out = smiley("where", "last", check=0).stdout
    main, stuck = out.split("\n\nthread ")[1:]
    assert re.match(r"0 MainThread \(ident \d+\): still running in spin at line \d+ at the "
                    r"end, last event [\d.]+ s before the run ended\n", main)
    frames = [line.split()[:3] for line in main.splitlines()[1:4]]
    assert frames[0] == ["prog.py:23", "<module>", "main()"]
    assert frames[1] == ["prog.py:21", "main", "spin(5000)"]
    assert frames[2][0] == ">" and frames[2][1] in {f"prog.py:{n}" for n in range(9, 13)}
    assert frames[2][2] == "spin"
    assert main.splitlines()[4] == "        limit = 5000"
    assert "        total = " in main and "        i = " in main
    lines = stuck.splitlines()
    assert lines[1].split() == [">", "prog.py:5", "wait_forever", "gate.wait()"]
    assert re.fullmatch(r" {8}gate = <threading.Event at 0x[0-9a-f]+: unset>", lines[2])
    assert lines[3:] == ["        label = 'waiting'"]
    only = smiley("where", "last", "--thread", "stuck", check=0).stdout
    assert "MainThread" not in only and "wait_forever" in only

    threads = json.loads(smiley("threads", "last", "-f", "json", check=0).stdout)
    assert [(t["Thread"], t["Name"], t["Process"]) for t in threads] == \
        [(0, "MainThread", run.pid), (1, "stuck", run.pid)]
    assert threads[1]["Ended"] == "still running in wait_forever at line 5 at the end"
    assert threads[1]["Events"] == 3 and threads[0]["Events"] > 1000
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", t["First event"]) for t in threads)


def test_threads_of_a_finished_run_say_how_each_ended(smiley):
    smiley.record(ENDING)
    threads = json.loads(smiley("threads", "last", "-f", "json", check=0).stdout)
    assert [(t["Name"], t["Ended"]) for t in threads] == \
        [("MainThread", "ended"), ("failing", "ended: fail raised ValueError")]
    out = smiley("where", "last", check=0).stdout
    assert "thread 1 failing" in out and "<- fail raised ValueError" in out


def test_where_with_an_unknown_run_or_thread_is_one_line(smiley):
    smiley.record(ENDING)
    result = smiley("where", "nope", check=2)
    assert result.stderr == f"smiley-like: no run 'nope' in '{smiley.database}' (a run id is " \
                            "hex digits, or 'last')\n"
    result = smiley("where", "last", "--thread", "ghost", check=2)
    assert result.stderr.startswith("smiley-like: no thread ghost in this run")


def test_the_monitor_summary_shows_a_stalled_thread_where_it_stalled(smiley, monitor):
    watcher = monitor("--summary", "--refresh", "0.2", "--stall-after", "1").start()
    process = start(smiley, "--remote", "--socket", watcher.endpoint)
    try:
        assert process.stdout.readline() == "hanging\n"
        watcher.wait_for(lambda: re.search(r"thread 1 stuck +stalled \d+ s at prog.py:5 in "
                                           r"wait_forever", watcher.out), "a stalled thread")
        out = watcher.out
        assert re.search(r"^\[\w{8}\] prog.py +[\d,]+ events +[\d,]+/s  prog.py:\d+ in", out,
                         re.M)
        assert re.search(r"^ +thread 0 MainThread +busy at prog.py:\d+ in (spin|main)", out,
                         re.M)
    finally:
        process.kill()
        process.communicate(timeout=60)
    assert watcher.stop() == 0


def test_where_says_a_generator_shows_what_changed_since_it_resumed(smiley):
    smiley.record("""\
        import os, signal, time
        def gen(n):
            big = list(range(n))
            for i in range(n):
                if i == 2:
                    time.sleep(0.3)
                    os.kill(os.getpid(), signal.SIGKILL)
                yield i
        g = gen(5)
        next(g); next(g); next(g)
        """, check=-9)
    out = smiley("where", "last", check=0).stdout
    lines = out.splitlines()
    assert lines[3].split()[:2] == ["prog.py:10", "<module>"]
    assert lines[4].split()[:3] == [">", "prog.py:6", "gen"]
    assert lines[5:] == ["      (variables that changed since it last resumed)", "        i = 2"]
