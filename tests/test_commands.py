"""list, show, replay and delete, on real recorded runs."""

import json

PROGRAM = """\
import threading

def square(x):
    result = x * x
    return result

def worker():
    square(7)

def main():
    total = 0
    for i in range(3):
        total += square(i)
    t = threading.Thread(target=worker, name="helper")
    t.start()
    t.join()
    return total

main()
"""


def test_list_shows_runs_newest_first_as_json(smiley):
    smiley.record("x = 1\n", name="first.py")
    smiley.record("import sys\nsys.exit(4)\n", name="second.py", check=4)
    rows = json.loads(smiley("list", "-f", "json", check=0).stdout)
    assert [row["Command"] for row in rows] == ["second.py", "first.py"]
    assert rows[0]["Ended"] == "exit 4"
    assert rows[1]["Ended"] == "exit 0"
    assert rows[1]["Events"] == 3
    assert all(len(row["Run"]) == 32 for row in rows)
    assert rows[0]["Duration"].endswith("s")


def test_show_a_failed_run_has_its_traceback(smiley):
    smiley.record("def f():\n    raise RuntimeError('boom')\nf()\n", check=1)
    shown = json.loads(smiley("show", "last", "-f", "json", check=0).stdout)
    assert shown["Status"] == "error"
    assert shown["Exception"] == "RuntimeError: boom"
    assert "Traceback (most recent call last)" in shown["Traceback"]
    assert shown["Ended"] == "RuntimeError (exit 1)"
    assert shown["Threads"] == "0:MainThread"


def test_run_ids_by_prefix_and_last(smiley):
    smiley.record("x = 1\n")
    run_id = smiley.last_run().id
    for ref in (run_id, run_id[:6], "last"):
        shown = json.loads(smiley("show", ref, "-f", "json", check=0).stdout)
        assert shown["Run"] == run_id


def test_replay_prints_source_locals_and_returns(smiley):
    smiley.record(PROGRAM)
    out = smiley("replay", "last", "--thread", "MainThread", check=0).stdout
    lines = out.splitlines()
    assert any("prog.py:11  total = 0" in line for line in lines)
    assert any("-> square(x=2)" in line for line in lines)
    assert any("<- square returned 4" in line for line in lines)
    # a changed local is printed under the line that changed it
    index = next(i for i, line in enumerate(lines) if "prog.py:4  result = x * x" in line)
    assert lines[index + 1].strip() == "result = 0"
    # calls are indented one level deeper than their caller
    call = next(line for line in lines if "-> square(x=0)" in line)
    caller = next(line for line in lines if "prog.py:13  total += square(i)" in line)
    assert call.index("prog.py") == caller.index("prog.py") + 2


def test_replay_filters(smiley):
    smiley.record(PROGRAM)
    helper = smiley("replay", "last", "--thread", "helper", check=0).stdout
    assert "[helper]" in helper and "[MainThread]" not in helper
    assert "-> worker()" in helper
    only_square = smiley("replay", "last", "--function", "square", check=0).stdout
    assert only_square.count("-> square(") == 4
    assert "main" not in only_square
    events = smiley.events()
    middle = events[len(events) // 2].seq
    ranged = smiley("replay", "last", "--from", str(middle), "--to", str(middle + 2),
                    check=0).stdout
    seqs = [int(line.split()[0]) for line in ranged.splitlines() if line.split()[0].isdigit()]
    assert seqs == [middle, middle + 1, middle + 2]
    plain = smiley("replay", "last", "--no-locals", "--function", "square", check=0).stdout
    assert "x=" not in plain
    assert all(line.split()[0].isdigit() for line in plain.splitlines())  # no locals lines
    by_file = smiley("replay", "last", "--file", "prog.py", check=0).stdout
    assert by_file.count("\n") >= len(events)


def test_replay_unknown_thread_or_function_is_a_clear_error(smiley):
    smiley.record("x = 1\n")
    result = smiley("replay", "last", "--function", "nope")
    assert result.returncode == 2 and "no recorded function matches nope" in result.stderr
    result = smiley("replay", "last", "--thread", "nope")
    assert result.returncode == 2 and "no thread nope" in result.stderr


def test_replay_shows_the_source_as_it_ran(smiley):
    smiley.record("def f():\n    return 'original line'\nf()\n")
    smiley.script("def f():\n    return 'edited afterwards'\nf()\n")
    out = smiley("replay", "last", check=0).stdout
    assert "return 'original line'" in out
    assert "edited afterwards" not in out


def test_replay_of_a_long_run_streams(smiley):
    smiley.record("""\
        def step(i):
            return i + 1
        for i in range(100000):
            step(i)
        """)
    import subprocess
    import sys
    process = subprocess.Popen(
        [sys.executable, "-m", "smiley_like", "replay", "last", "--database", smiley.database],
        cwd=smiley.directory, stdout=subprocess.PIPE, text=True, env=smiley.env())
    with process:
        first = process.stdout.readline()
        process.kill()
    assert "-> <module>()" in first


def test_delete_removes_runs_and_unused_sources(smiley):
    smiley.record("x = 1\n", name="a.py")
    first = smiley.last_run().id
    smiley.record("y = 2\n", name="b.py")
    out = smiley("delete", first[:8], check=0).stdout
    assert out == f"deleted {first}\n"
    rows = json.loads(smiley("list", "-f", "json", check=0).stdout)
    assert [row["Command"] for row in rows] == ["b.py"]
    store = smiley.store()
    try:
        with store.connect() as conn:
            assert conn.exec_driver_sql("select count(*) from source").scalar() == 1
            assert conn.exec_driver_sql(
                "select count(*) from chunk where run_id = ?", (first,)).scalar() == 0
    finally:
        store.close()


def test_python_dash_m_smiley_like_is_the_same_program(smiley):
    result = smiley("--help", database=False)
    assert result.returncode == 0
    for command in ("run", "list", "show", "replay", "delete"):
        assert command in result.stdout


def test_a_frame_left_by_an_exception_replays_as_raised_even_across_chunks(smiley):
    smiley.record("""\
        import time
        def fails():
            try:
                raise KeyError("k")
            finally:
                time.sleep(0.3)  # the publisher sends a batch meanwhile
        try:
            fails()
        except KeyError:
            pass
        """)
    out = smiley("replay", "last", check=0).stdout
    assert "<- fails raised KeyError" in out
    events = smiley.events()
    ret = next(e for e in events if e.code.name == "fails" and e.kind == 2)
    assert ret.raised == "KeyError"
    tail = smiley("replay", "last", "--from", str(ret.seq), check=0).stdout
    assert "<- fails raised KeyError" in tail
