"""smiley-like diff on real recorded runs."""

import json
import re

import pytest

from smiley_like.diff import Masker

DEEP = """\
import sys

def classify(x, threshold):
    if x > threshold:
        return "big"
    return "small"

def step(values, threshold):
    return [classify(v, threshold) for v in values]

def process(values):
    threshold = 5
    return step(values, threshold)

def main(argv):
    values = [int(a) for a in argv]
    return process(values)

print(main(sys.argv[1:]))
"""


def record_two(smiley, source_a, args_a=(), source_b=None, args_b=(), *, check_b=0):
    """Record *source_a* and then *source_b* (the same by default) as prog.py; their run ids."""
    smiley.record(source_a, *args_a)
    first = smiley.last_run().id
    smiley.record(source_a if source_b is None else source_b, *args_b, check=check_b)
    return first, smiley.last_run().id


def diff_json(smiley, a, b, *options, check=1):
    return json.loads(smiley("diff", a, b, "-f", "json", *options, check=check).stdout)


def test_identical_inputs_are_equivalent_despite_addresses_times_and_pids(smiley):
    source = """\
        import datetime, os, time, uuid

        class Thing:
            pass

        def make():
            thing = Thing()
            made_at = time.time()
            today = datetime.datetime.now()
            token = uuid.uuid4().hex
            pid = os.getpid()
            return thing, made_at, today, token, pid

        result = make()
        """
    a, b = record_two(smiley, source)
    assert "The runs are equivalent." in smiley("diff", a, a, check=0).stdout
    result = smiley("diff", a, b, check=0)
    assert "The runs are equivalent." in result.stdout
    assert result.stderr == ""
    assert diff_json(smiley, a, b, "--all", check=0)["equivalent"] is True
    raw = diff_json(smiley, a, b, "--no-mask")
    assert raw["first"]["kind"] == "locals"
    assert " at 0x" in raw["first"]["locals"][0]["a"]  # <function make at 0x...>


def test_a_different_input_is_reported_at_the_branch_it_changes(smiley):
    a, b = record_two(smiley, DEEP, ("1", "2", "3"), DEEP, ("1", "7", "3"))
    report = diff_json(smiley, a, b)
    assert report["equivalent"] is False
    first = report["first"]
    assert first["kind"] == "flow"
    assert first["function"] == "classify"
    # (before 3.12, the list comprehension is a frame of its own)
    assert [f["function"] for f in first["a"]["stack"] if "<listcomp>" not in f["function"]] \
        == ["<module>", "main", "process", "step", "classify"]
    lines = [[f["line"] for f in first[run]["stack"]] for run in "ab"]
    assert lines[0][:-1] == lines[1][:-1] and lines[0][-1] == lines[1][-1] + 1
    assert first["a"]["after"]["source"] == first["b"]["after"]["source"] == "if x > threshold:"
    assert first["a"]["source"] == 'return "small"'
    assert first["b"]["source"] == 'return "big"'
    assert {"name": "x", "a": "2", "b": "7"} in first["locals"]
    assert all(item["name"] != "threshold" for item in first["locals"])
    # the values parted earlier, where the input came in
    assert report["values_first_differ"]["kind"] == "arguments"
    assert report["values_first_differ"]["function"] == "main"
    text = smiley("diff", a, b, check=1).stdout
    assert "First divergence: the runs take different steps in classify" in text
    assert "\033[" not in text  # plain in a pipe
    assert "\033[" in smiley("diff", a, b, "--color", "always", check=1).stdout


LOOP = """\
import sys

def weight(item):
    return item * 2

def work(items):
    total = 0
    for item in items:
        total += weight(item)
    return total > 0

def finish(flag):
    words = []
    for word in ("a", "b", "c"):
        words.append(word * 2)
    return flag, words

items = list(range(int(sys.argv[1])))
print(finish(work(items)))
"""


def test_an_extra_loop_iteration_is_reported_once_and_the_runs_line_up_again(smiley):
    a, b = record_two(smiley, LOOP, ("3",), LOOP, ("4",))
    report = diff_json(smiley, a, b, "--all", "--context", "2")
    flows = [d for d in report["divergences"] if d["flow"]]
    assert len(flows) == 1
    extra = flows[0]
    assert extra["kind"] == "flow" and extra["function"] == "work"
    assert extra["a"]["only"]["steps"] == 0
    assert extra["b"]["only"]["steps"] == 3  # the body, its call, the loop line again
    assert [s["kind"] for s in extra["b"]["only"]["first"]] == ["line", "call", "line"]
    assert extra["b"]["only"]["first"][1]["events"] == 3  # weight: call, line, return
    assert len(extra["a"]["context"]) == len(extra["b"]["context"]) == 2
    assert not any(d["function"] == "finish" for d in report["divergences"])
    summary = report["summary"]
    assert {"function": "weight", "a": 3, "b": 4} in summary["call_counts"]
    assert summary["flow_divergences"] == 1
    assert summary["ended"] == {"a": "exit 0", "b": "exit 0"}
    text = smiley("diff", a, b, "--all", check=1).stdout
    assert "only in b: 3 steps, 5 events" in text
    assert re.search(r"\nDivergence \d+ \(the control flow parts\): the runs take different "
                     r"steps in work\n", text)
    assert "weight: 3, 4" in text


def test_a_changed_return_value_only(smiley):
    source = """\
        import os

        def answer():
            return int(os.environ["ANSWER"])

        def main():
            for _ in range(2):
                answer()

        main()
        """
    smiley.script(source)
    smiley("run", "prog.py", env={"ANSWER": "42"}, check=0)
    a = smiley.last_run().id
    smiley("run", "prog.py", env={"ANSWER": "43"}, check=0)
    b = smiley.last_run().id
    report = diff_json(smiley, a, b, "--all")
    assert report["first"]["kind"] == "return"
    assert report["first"]["function"] == "answer"
    assert (report["first"]["a"]["value"], report["first"]["b"]["value"]) == ("42", "43")
    assert report["values_first_differ"] is None
    assert report["summary"]["flow_divergences"] == 0
    assert report["summary"]["returns"] == [
        {"function": "answer", "times": 2, "a": "42", "b": "43"}]


def test_an_exception_in_one_run(smiley):
    source = """\
        import sys

        def parse(text):
            return int(text)

        def main(words):
            return [parse(w) for w in words]

        print(main(sys.argv[1:]))
        """
    a, b = record_two(smiley, source, ("1", "2", "3"), source, ("1", "x", "3"), check_b=1)
    report = diff_json(smiley, a, b, "--all")
    first = report["first"]
    assert first["kind"] == "flow" and first["function"] == "parse"
    assert first["a"]["only"]["steps"] == 0
    assert first["b"]["only"]["first"][0]["kind"] == "exception"
    assert first["b"]["only"]["first"][0]["value"][0] == "ValueError"
    assert {"name": "text", "a": "'2'", "b": "'x'"} in first["locals"]
    assert report["summary"]["ended"] == {"a": "exit 0", "b": "ValueError (exit 1)"}
    assert report["divergences"][-1]["kind"] == "ending"
    assert "main" in [r["function"] for r in report["summary"]["returns"]]


def test_an_inserted_source_line_does_not_make_the_rest_different(smiley):
    before = """\
        def total(numbers):
            result = 0
            for n in numbers:
                result += n
            return result

        def report(value):
            text = f"total {value}"
            return text

        print(report(total([1, 2, 3])))
        """
    after = before.replace("            result = 0\n",
                           "            result = 0\n            print('summing')\n")
    a, b = record_two(smiley, before, (), after)
    report = diff_json(smiley, a, b, "--all")
    flows = [d for d in report["divergences"] if d["flow"]]
    assert len(flows) == 1
    inserted = flows[0]
    assert inserted["function"] == "total"
    assert inserted["a"]["only"]["steps"] == 0
    assert inserted["b"]["only"]["steps"] == 1
    assert inserted["b"]["only"]["first"][0]["source"] == "print('summing')"
    # everything after lines up, although every line number below moved
    assert [d["function"] for d in report["divergences"]] == ["total"]
    assert report["summary"]["returns"] == []


def test_runs_of_different_programs(smiley):
    smiley.record("def f():\n    return 1\nf()\n", name="one.py")
    a = smiley.last_run().id
    smiley.record("import sys\nclass A:\n    pass\nfor i in range(3):\n    A()\n", name="two.py")
    b = smiley.last_run().id
    report = diff_json(smiley, a, b, "--all")
    assert report["a"]["program"] == "one.py" and report["b"]["program"] == "two.py"
    assert report["first"]["flow"] is True
    assert report["summary"]["only_in_a"] == ["f"]
    assert report["summary"]["only_in_b"] == ["A"]
    text = smiley("diff", a, b, check=1).stdout
    assert "note: these are runs of different programs: one.py and two.py" in text


def test_a_frame_that_differs_beyond_the_look_ahead_lines_up_at_its_return(smiley):
    source = """\
        import sys

        def busy(n):
            count = 0
            while count < n:
                count += 1
            return "done"

        def after():
            return "same"

        busy(int(sys.argv[1]))
        after()
        """
    a, b = record_two(smiley, source, ("2",), source, ("200",))
    report = diff_json(smiley, a, b, "--all", "--window", "50")
    flows = [d for d in report["divergences"] if d["flow"]]
    assert [d["kind"] for d in flows] == ["rest"]
    assert flows[0]["function"] == "busy"
    assert flows[0]["b"]["only"]["events"] > 300
    assert not any(d["function"] in ("after", "") for d in report["divergences"])
    # with the default look-ahead it is the extra iterations, then the runs line up
    report = diff_json(smiley, a, b, "--all")
    assert [d["kind"] for d in report["divergences"] if d["flow"]] == ["flow"]


def test_function_ignore_and_thread_narrow_the_comparison(smiley):
    source = """\
        import sys, threading, time

        def stable():
            return sum(range(4))

        def noisy():
            started = time.perf_counter()
            return started > 0

        def helper():
            stable()

        t = threading.Thread(target=helper, name="worker")
        t.start()
        t.join()
        stable()
        noisy()
        if len(sys.argv) > 1:
            stable()
        """
    a, b = record_two(smiley, source, (), source, ("x",))
    # (t's repr says "started" or "stopped" as the thread races the main one)
    report = diff_json(smiley, a, b, "--ignore", "t")
    assert report["first"]["kind"] == "flow"
    assert report["values_first_differ"]["locals"][0]["name"] == "started"
    assert diff_json(smiley, a, b, "--ignore", "started", "--function", "noisy",
                     check=0)["equivalent"]
    only_stable = diff_json(smiley, a, b, "--function", "stable")
    assert only_stable["first"]["b"]["only"]["first"][0]["function"] == "stable"
    worker = diff_json(smiley, a, b, "--thread", "worker", check=0)
    assert worker["a"]["thread"] == "worker" and worker["a"]["threads"] == 2
    assert "; thread worker of 2)" in smiley("diff", a, b, "--thread", "worker", check=0).stdout
    stable_calls = diff_json(smiley, a, b, "--all", "--thread", "0", "--ignore", "started",
                             "--ignore", "sys", "--ignore", "t")["summary"]["call_counts"]
    assert stable_calls == [{"function": "stable", "a": 1, "b": 2}]


def test_errors_exit_2_with_one_line(smiley):
    smiley.record("x = 1\n")
    run_id = smiley.last_run().id
    unknown = smiley("diff", run_id, "abc123", check=2)
    assert unknown.stderr == f"smiley-like: no run 'abc123' in '{smiley.database}'\n"
    assert unknown.stdout == ""
    nothing = smiley("diff", run_id, "last", "--function", "nosuch", check=2)
    assert nothing.stderr == "smiley-like: no recorded function matches nosuch in either run\n"
    thread = smiley("diff", run_id, "last", "--thread", "nosuch", check=2)
    assert thread.stderr.startswith(f"smiley-like: run {run_id}: no thread nosuch in this run")
    assert smiley("diff", run_id, check=2).stderr.startswith("usage:")
    assert smiley("diff", run_id, "last", "--context", "-1", check=2).stderr == (
        "smiley-like: --context must be 0 or more and --window 1 or more\n")


@pytest.mark.parametrize(("a", "b", "same"), [
    ("<Thing object at 0x7f3a2b1c0d90>", "<Thing object at 0x7f11aa22bb40>", True),
    ("1763760000.25", "1763760001.5", True),
    ("'2026-11-21 21:02:29.123456'", "'2026-11-22T08:00:00'", True),
    ("'8f88c0de8f88c0de8f88c0de8f88c0de'", "'00000000111111112222222233333333'", True),
    ("<Thread(worker, started 4242)>", "<Thread(worker, started 4343)>", True),  # pids, idents
    ("4242", "4244", False),
    ("0x10", "0x11", False),  # short hex is a value, not an address
])
def test_masking(a, b, same):
    assert Masker(numbers=(4242, 4343)).same(a, b) is same
    assert Masker(enabled=False, numbers=(4242, 4343)).same(a, b) is (a == b)
