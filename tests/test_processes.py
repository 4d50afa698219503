"""Child processes join their parent's run: multiprocessing, os.fork, subprocess; real processes."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import python
from smiley_like.events import CALL, EXCEPTION, KIND_NAMES
from smiley_like.store import queries

POOL = """\
import multiprocessing as mp
import sys

def square(x):
    y = x * x
    return y

if __name__ == "__main__":
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        print(sorted(pool.map(square, range(8))))
"""

FORK = """\
import os

def child(n):
    total = sum(range(n))
    print("child", total, flush=True)
    os._exit(3)

def main():
    pid = os.fork()
    if pid == 0:
        child(5)
    _, status = os.waitpid(pid, 0)
    print("parent saw", os.waitstatus_to_exitcode(status))

main()
"""

# A child interpreter that starts one of its own: three levels.
NESTED = """\
import subprocess, sys

def level(n):
    if n < 2:
        subprocess.run([sys.executable, __file__, str(n + 1)], check=True)
    print("level", n, flush=True)

level(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""

RAISING = """\
import multiprocessing as mp, sys

def fail(code):
    raise ValueError(f"bad {code}")

if __name__ == "__main__":
    worker = mp.get_context(sys.argv[1]).Process(target=fail, args=(7,))
    worker.start()
    worker.join()
    print("worker exit code", worker.exitcode)
"""

HANGING = """\
import multiprocessing as mp, threading

def hang(label):
    gate = threading.Event()
    gate.wait()

if __name__ == "__main__":
    worker = mp.get_context("spawn").Process(target=hang, args=("stuck",))
    worker.start()
    print("worker", worker.pid, flush=True)
    worker.join()
    print("worker exit code", worker.exitcode)
"""


def settled(smiley, timeout=30):
    """The process rows of the last run, once none of them is still being recorded."""
    deadline = time.monotonic() + timeout
    while True:
        store = smiley.store()
        try:
            rows = queries.processes(store, queries.resolve_run(store, "last"))
        finally:
            store.close()
        if all(row.status != "running" for row in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def calls(smiley, row, function):
    return [event for event in smiley.events(row.id)
            if event.kind == CALL and event.code.name == function]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_pool_records_every_worker_into_the_run(smiley, method):
    smiley.script(POOL)
    result = smiley("run", "prog.py", method, check=0)
    assert result.stdout == python(smiley.directory, "prog.py", method).stdout
    assert result.stdout == "[0, 1, 4, 9, 16, 25, 36, 49]\n"
    rows = settled(smiley)
    main, children = rows[0], rows[1:]
    assert main.parent_id is None and main.status == "finished"
    assert children, "no child process was recorded"
    assert all(row.root_id == main.id for row in children)
    assert all(row.lost_events == 0 for row in rows), [(r.pid, r.lost_events) for r in rows]
    # Every task ran in some worker, and each worker's call carries its argument.
    seen = sorted(int(event.value["x"]) for row in children
                  for event in calls(smiley, row, "square"))
    assert seen == list(range(8))
    # The run is one run in the list, with its processes counted.
    listed = json.loads(smiley("list", "-f", "json", check=0).stdout)
    assert [entry["Run"] for entry in listed] == [main.id]
    assert listed[0]["Processes"] == len(rows)
    processes = json.loads(smiley("processes", "last", "-f", "json", check=0).stdout)
    assert [entry["Pid"] for entry in processes] == [row.pid for row in rows]


def test_os_fork_child_goes_on_as_a_process_of_its_own(smiley):
    result = smiley.record(FORK)
    plain = python(smiley.directory, "prog.py")
    # Same output, and no warning about forking a threaded process (ours are threads).
    assert (result.stdout, result.stderr) == (plain.stdout, plain.stderr)
    rows = settled(smiley)
    assert len(rows) == 2
    parent, child = rows
    assert (parent.status, parent.exit_code) == ("finished", 0)
    assert child.parent_id == parent.id and child.pid != parent.pid
    # The child calls os._exit itself: it ended abruptly, with its status, and kept its events.
    assert (child.status, child.exit_code) == ("abrupt", 3)
    assert "os._exit(3)" in child.notes
    flow = [(KIND_NAMES[e.kind], e.code.name) for e in smiley.events(child.id)]
    # It opens where the parent was (inside main), then runs child() alone.
    assert flow[:2] == [("call", "<module>"), ("call", "main")]
    assert ("call", "child") in flow
    assert not any(e.code.name == "child" for e in smiley.events(parent.id))
    # The parent's record is whole: main returned after the child ended.
    assert [KIND_NAMES[e.kind] for e in smiley.events(parent.id)][-1] == "return"
    replay = smiley("replay", "last", "--process", str(child.pid), check=0)
    assert "child(n=5)" in replay.stdout
    assert "total = 10" in replay.stdout
    hint = smiley("replay", "last", check=0)
    assert "--process PID" in hint.stderr and str(child.pid) in hint.stderr


def test_subprocesses_nest(smiley):
    result = smiley.record(NESTED)
    assert result.stdout == "level 2\nlevel 1\nlevel 0\n"
    rows = settled(smiley)
    assert len(rows) == 3
    by_id = {row.id: row for row in rows}
    first, second, third = rows
    assert second.parent_id == first.id and third.parent_id == second.id
    command = json.loads(third.command)
    assert command[-2].endswith("prog.py") and command[-1] == "2"
    # A child interpreter that runs to its end without sys.exit: no exit code is seen.
    assert [(row.status, row.exit_code) for row in rows] == \
        [("finished", 0), ("finished", None), ("finished", None)]
    for row, n in zip(rows, range(3)):
        (call,) = calls(smiley, row, "level")
        assert call.value["n"] == str(n)
    assert all(row.root_id == first.id for row in by_id.values())


def test_no_follow_children(smiley):
    smiley.script(POOL)
    smiley("run", "--no-follow-children", "prog.py", "fork", check=0)
    rows = settled(smiley)
    assert len(rows) == 1
    assert not calls(smiley, rows[0], "square")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_worker_that_raises(smiley, method):
    result = smiley.record(RAISING, method)
    assert "ValueError: bad 7" in result.stderr  # multiprocessing prints it, as untraced
    assert result.stdout == "worker exit code 1\n"
    parent, child = settled(smiley)
    assert (child.status, child.exit_code) == ("error", 1)
    raised = [e for e in smiley.events(child.id) if e.kind == EXCEPTION]
    assert raised and raised[0].code.name == "fail"
    assert parent.status == "finished"


def test_where_shows_a_hanging_worker_and_its_kill_is_abrupt(smiley):
    smiley.script(HANGING)
    program = subprocess.Popen([sys.executable, "-m", "smiley_like", "run", "--database",
                                smiley.database, "prog.py"], cwd=smiley.directory,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=smiley.env())
    try:
        worker_pid = int(program.stdout.readline().split()[1])
        deadline = time.monotonic() + 60
        while True:
            where = smiley("where", "last", check=0).stdout
            if "gate.wait()" in where or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        block = where[where.index(f"process {worker_pid}"):]
        assert "still being recorded" in block
        assert "> prog.py:5" in block and "hang" in block and "gate.wait()" in block
        assert "label = 'stuck'" in block
        only = smiley("where", "last", "--process", str(worker_pid), check=0).stdout
        assert only.startswith(f"process {worker_pid}")
        os.kill(worker_pid, signal.SIGKILL)
        out, err = program.communicate(timeout=60)
    finally:
        if program.poll() is None:
            program.kill()
    assert program.returncode == 0, err
    assert out.endswith("worker exit code -9\n")
    parent, child = settled(smiley)
    assert parent.status == "finished"
    assert child.status == "abrupt" and "killed" in child.notes
    threads = json.loads(smiley("threads", "last", "-f", "json", check=0).stdout)
    assert {entry["Process"] for entry in threads} == {parent.pid, child.pid}


def test_a_pool_in_remote_mode_sends_every_process_to_the_monitor(smiley, monitor):
    watcher = monitor("--quiet").start()
    smiley.script(POOL)
    result = smiley("run", "--remote", "--socket", watcher.endpoint, "prog.py", "spawn",
                    check=0)
    assert result.stdout == "[0, 1, 4, 9, 16, 25, 36, 49]\n"
    assert "not recorded" not in result.stderr, result.stderr
    rows = settled(smiley)
    assert len(rows) >= 2 and all(row.lost_events == 0 for row in rows)
    seen = sorted(int(event.value["x"]) for row in rows[1:]
                  for event in calls(smiley, row, "square"))
    assert seen == list(range(8))
    assert watcher.stop() == 0
    # Children are shown as processes of their run.
    assert re.search(rf"\[{rows[0].id[:8]} pid {rows[1].pid}\] started", watcher.out)


def test_the_monitor_summary_shows_a_stalled_worker_process(smiley, monitor):
    watcher = monitor("--summary", "--refresh", "0.2", "--stall-after", "1").start()
    smiley.script(HANGING)
    program = subprocess.Popen([sys.executable, "-m", "smiley_like", "run", "--remote",
                                "--socket", watcher.endpoint, "prog.py"],
                               cwd=smiley.directory, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=smiley.env())
    try:
        worker_pid = int(program.stdout.readline().split()[1])
        watcher.wait_for(lambda: re.search(
            rf"\[\w{{8}} pid {worker_pid}\].*\n +thread 0 MainThread +stalled \d+ s at "
            r"prog.py:5 in hang", watcher.out), "a stalled worker")
        os.kill(worker_pid, signal.SIGKILL)
        out, err = program.communicate(timeout=60)
    finally:
        if program.poll() is None:
            program.kill()
    assert out.endswith("worker exit code -9\n")
    assert watcher.stop() == 0


def test_process_pool_executor(smiley):
    result = smiley.record("""\
        from concurrent.futures import ProcessPoolExecutor

        def cube(n):
            return n ** 3

        if __name__ == "__main__":
            with ProcessPoolExecutor(max_workers=2) as pool:
                print(list(pool.map(cube, range(5))))
        """)
    assert result.stdout == "[0, 1, 8, 27, 64]\n"
    rows = settled(smiley)
    assert len(rows) >= 2 and all(row.lost_events == 0 for row in rows)
    seen = sorted(int(event.value["n"]) for row in rows[1:] for event in calls(smiley, row, "cube"))
    assert seen == list(range(5))


def test_threads_that_start_threads_and_one_still_running_at_exit(smiley):
    result = smiley.record("""\
        import threading, time

        def leaf(n):
            return n + 1

        def branch(n):
            inner = threading.Thread(target=leaf, args=(n,), name=f"leaf-{n}")
            inner.start()
            inner.join()

        def forever():
            while True:
                time.sleep(0.01)

        threading.Thread(target=forever, name="lingering", daemon=True).start()
        branches = []
        for n in range(2):
            branches.append(threading.Thread(target=branch, args=(n,), name=f"branch-{n}"))
        for thread in branches:
            thread.start()
        for thread in branches:
            thread.join()
        print("done")
        """)
    assert result.stdout == "done\n"
    rows = json.loads(smiley("threads", "last", "-f", "json", check=0).stdout)
    by_name = {row["Name"]: row for row in rows}
    assert {"MainThread", "lingering", "branch-0", "branch-1", "leaf-0", "leaf-1"} \
        <= set(by_name)
    assert by_name["leaf-1"]["Ended"] == "ended" and by_name["leaf-1"]["Events"] > 0
    assert by_name["lingering"]["Ended"].startswith("still running in forever at line")
    # Each thread's own start and end, apart from its events; none for the daemon.
    assert all(row["Started"] for row in rows)
    assert by_name["lingering"]["Finished"] == ""
    assert by_name["leaf-0"]["Finished"] and by_name["MainThread"]["Finished"]
    assert by_name["branch-0"]["Started"] <= by_name["leaf-0"]["Started"] \
        <= by_name["leaf-0"]["Finished"] <= by_name["branch-0"]["Finished"]
    leaf_calls = [e for e in smiley.events() if e.kind == CALL and e.code.name == "leaf"]
    assert sorted(e.value["n"] for e in leaf_calls) == ["0", "1"]


def test_subprocess_with_preexec_fn_is_not_disturbed(smiley):
    result = smiley.record("""\
        import os, subprocess

        results = {}
        for _ in range(30):
            done = subprocess.run(["echo", "hi"], preexec_fn=os.setpgrp, capture_output=True,
                                  text=True)
            key = (done.returncode, done.stdout.strip())
            results[key] = results.get(key, 0) + 1
        print(results)
        """)
    assert result.stdout == "{(0, 'hi'): 30}\n"
    assert result.stderr == ""
    assert len(settled(smiley)) == 1  # echo is not a Python process of the run


def test_children_that_outlive_their_parent_are_recorded(smiley):
    smiley.record("""\
        import os, subprocess, sys, time

        def late(n):
            time.sleep(0.5)
            return n * 2

        if os.fork() == 0:
            late(21)
            sys.exit(0)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
        print("parent exits")
        """)
    rows = settled(smiley)
    assert len(rows) == 3, [(row.pid, row.command) for row in rows]
    forked = [row for row in rows if calls(smiley, row, "late")]
    assert len(forked) == 1 and forked[0].status == "finished"


def test_exec_ends_the_record_and_the_new_image_joins(smiley):
    smiley.record("""\
        import os, sys

        def again(n):
            return n + 1

        if len(sys.argv) == 1:
            print("before exec", flush=True)
            os.execv(sys.executable, [sys.executable, sys.argv[0], "again"])
        print("after exec", again(3))
        """)
    rows = settled(smiley)
    assert len(rows) == 2
    first, image = rows
    assert first.status == "finished" and "exec" in first.notes
    assert image.parent_id == first.id and image.pid == first.pid
    assert calls(smiley, image, "again")


def test_a_worker_busy_in_c_code_is_still_terminated(smiley):
    smiley.script("""\
        import hashlib, multiprocessing as mp, sys, time

        def busy(_):
            return hashlib.pbkdf2_hmac("sha256", b"x", b"y", 10**9)

        if __name__ == "__main__":
            pool = mp.get_context(sys.argv[1]).Pool(1)
            pool.map_async(busy, [1])
            time.sleep(1.5)
            started = time.monotonic()
            pool.terminate()
            print("terminated", time.monotonic() - started < 5)
        """)
    result = smiley("run", "prog.py", "fork", check=0, timeout=60)
    assert result.stdout == "terminated True\n"
    rows = settled(smiley)
    worker = rows[1]
    assert worker.status == "abrupt" and worker.exit_code == -15
    assert calls(smiley, worker, "busy")


def test_a_stale_environment_is_ignored(smiley):
    # A shell started from a recorded program keeps its environment after the run.
    result = smiley.record("""\
        import json, os
        print(json.dumps({key: os.environ[key] for key in ("SMILEY_LIKE_CHILD", "PYTHONPATH")}))
        """)
    left_behind = json.loads(result.stdout)
    settled(smiley)
    deadline = time.monotonic() + 30
    writer = json.loads(left_behind["SMILEY_LIKE_CHILD"])["writer_pid"]
    while os.path.exists(f"/proc/{writer}") and time.monotonic() < deadline:
        time.sleep(0.1)
    smiley.script("import os; print(sorted(k for k in os.environ if k == 'SMILEY_LIKE_CHILD'"
                  " or 'boot' in os.environ.get(k, '') and k == 'PYTHONPATH'))",
                  name="later.py")
    later = subprocess.run([sys.executable, "later.py"], cwd=smiley.directory,
                           capture_output=True, text=True, timeout=60,
                           env=dict(smiley.env(), **left_behind))
    assert (later.stdout, later.stderr) == ("[]\n", "")
    assert len(settled(smiley)) == 1


def test_the_exit_status_of_a_child_interpreter(smiley):
    smiley.record("""\
        import subprocess, sys

        if len(sys.argv) > 1:
            sys.exit(int(sys.argv[1]))
        for status in ("0", "3"):
            print(subprocess.run([sys.executable, __file__, status]).returncode)
        """)
    rows = settled(smiley)
    assert [(row.status, row.exit_code) for row in rows[1:]] == [("finished", 0), ("error", 3)]
