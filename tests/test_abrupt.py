"""Programs that end abruptly, fork, or trace themselves: nothing flushed is lost, nothing crashes."""

import pytest
import signal
import subprocess
import sys
import time

from smiley_like.events import CALL


def test_os_exit_keeps_the_events_and_the_status(smiley):
    smiley.record("""\
        import os
        def work(n):
            return n + 1
        for i in range(1000):
            work(i)
        print("bye", flush=True)
        os._exit(5)
        """, check=5)
    run = smiley.last_run()
    assert run.status == "abrupt" and run.exit_code == 5
    assert "os._exit(5)" in run.notes
    calls = [e for e in smiley.events() if e.kind == CALL and e.code.name == "work"]
    assert len(calls) == 1000
    assert run.lost_events == 0


def test_killed_program_keeps_what_was_flushed(smiley):
    smiley.script("""\
        import time
        def tick(i):
            return i
        i = 0
        while True:
            tick(i)
            i += 1
            if i == 200:
                print("ticking", flush=True)
            time.sleep(0.001)
        """)
    process = subprocess.Popen(
        [sys.executable, "-m", "smiley_like", "run", "--database", smiley.database, "prog.py"],
        cwd=smiley.directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=smiley.env())
    assert process.stdout.readline() == "ticking\n"
    time.sleep(0.5)  # several flushes
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    # the writer notices and marks the run; give it a moment
    for _ in range(100):
        run = smiley.last_run()
        if run.status != "running":
            break
        time.sleep(0.1)
    assert run.status == "abrupt"
    assert "without finishing" in run.notes
    ticks = [e for e in smiley.events() if e.kind == CALL and e.code.name == "tick"]
    assert len(ticks) >= 200
    assert [e.value["i"] for e in ticks] == [str(i) for i in range(len(ticks))]


def test_fork_child_runs_and_parent_run_is_intact(smiley):
    smiley.record("""\
        import os
        def parent_work():
            return 1
        def child_work():
            return 2
        pid = os.fork()
        if pid == 0:
            child_work()
            print("child done", flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        parent_work()
        print("parent done", flush=True)
        """)
    run = smiley.last_run()
    assert run.status == "finished"
    names = [e.code.name for e in smiley.events()]
    assert "parent_work" in names
    assert "child_work" not in names  # children are not followed yet


@pytest.mark.parametrize("options", [(), ("--calls-only",)])
def test_program_with_its_own_trace_function(smiley, options):
    result = smiley.record("""\
        import sys
        seen = []
        def mine(frame, event, arg):
            seen.append(event)
            return mine
        def traced_by_program():
            return 1
        def after():
            return 2
        sys.settrace(mine)
        traced_by_program()
        sys.settrace(None)
        after()
        print(len(seen) > 0, sys.gettrace())
        """, options=options)
    assert result.stdout == "True None\n"
    assert result.stderr.count("installed its own trace function") == 1
    run = smiley.last_run()
    assert "displaced by sys.settrace at" in run.notes
    names = [e.code.name for e in smiley.events()]
    assert "traced_by_program" not in names
    assert "after" in names  # recording resumed when the program removed its tracer


def test_pdb_in_the_program_works(smiley):
    smiley.script("""\
        def compute(x):
            y = x * 2
            return y
        import pdb
        pdb.set_trace()
        print("result", compute(21))
        """)
    result = smiley("run", "prog.py", input="n\nn\nc\n")
    assert result.returncode == 0
    assert "result 42" in result.stdout
    assert "(Pdb)" in result.stdout
    assert "installed its own trace function" in result.stderr


def test_python_trace_module_inside(smiley):
    smiley.script("def f():\n    return 3\nprint(f())\n", name="inner.py")
    result = smiley("run", "-m", "trace", "--count", "--missing", "-C", ".", "inner.py")
    assert result.returncode == 0
    assert "3" in result.stdout


def test_hostile_values_do_not_crash_or_change_the_program(smiley):
    result = smiley.record("""\
        class Raises:
            def __repr__(self):
                raise ValueError("no repr for you")
        class NotAString:
            def __repr__(self):
                return 42
        class Forever:
            def __repr__(self):
                while True:
                    pass
        def hostile():
            a = Raises()
            b = NotAString()
            c = []
            c.append(c)
            d = {"self": None}
            d["self"] = d
            e = list(range(10_000_000))
            f = "snow \\u2603 and \\udcff surrogate"
            g = b"\\xff\\xfe not utf-8"
            h = 10 ** 5000
            i = Forever()
            return len(e)
        print(hostile())
        """, options=["--max-repr", "60"])
    assert result.stdout == "10000000\n"
    changes = {}
    for event in smiley.events():
        if event.code.name == "hostile":
            changes.update(event.value or {} if event.kind != 2 else event.changes or {})
    assert changes["a"] == "<repr failed: ValueError>"
    assert changes["b"] == "<repr failed: TypeError>"  # repr() checks the type
    assert changes["c"] == "[[...]]"
    assert changes["d"] == "{'self': {...}}"
    assert changes["e"].startswith("[0, 1, 2, 3") and changes["e"].endswith("(10000000 items)]")
    assert len(changes["e"]) <= 60
    assert "\\u2603" in changes["f"] or "\u2603" in changes["f"]
    assert changes["g"].startswith("b'\\xff\\xfe")
    assert changes["h"] == "<int of 16610 bits>"
    assert changes["i"] == "<repr timed out>"


def test_hostile_arguments_and_return_values_with_calls_only(smiley):
    result = smiley.record("""\
        class Raises:
            def __repr__(self):
                raise ValueError("no repr for you")
        class Forever:
            def __repr__(self):
                while True:
                    pass
        class BadEq:
            def __eq__(self, other):
                raise RuntimeError("no eq")
            __hash__ = None
        def take(a, b, c, d):
            return Forever()
        def give():
            return Raises()
        loop = []
        loop.append(loop)
        take(Raises(), loop, BadEq(), list(range(10_000_000)))
        give()
        print("done")
        """, options=["--calls-only", "--max-repr", "60"])
    assert result.stdout == "done\n"
    calls = {e.code.name: e for e in smiley.events() if e.kind == 0}
    returns = {e.code.name: e for e in smiley.events() if e.kind == 2}
    assert calls["take"].value["a"] == "<repr failed: ValueError>"
    assert calls["take"].value["b"] == "[[...]]"
    assert calls["take"].value["c"].startswith("<prog.BadEq object at") \
        or calls["take"].value["c"].startswith("<__main__.BadEq object at")
    assert calls["take"].value["d"].endswith("(10000000 items)]")
    assert returns["take"].value == "<repr timed out>"
    assert returns["give"].value == "<repr failed: ValueError>"


def test_a_program_killed_at_once_still_leaves_its_run(smiley):
    smiley.record("""\
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
        """, check=-9)
    run = smiley.last_run()
    assert run.status == "abrupt" and run.command == '["prog.py"]'
    assert "without finishing" in run.notes
