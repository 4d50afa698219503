"""What is recorded for small known programs, read back from the real database."""

import json

from smiley_like.events import CALL, EXCEPTION, LINE, RETURN


def test_a_function_gives_call_line_return(smiley):
    smiley.record("""\
        def double(x):
            return x * 2
        double(21)
        """)
    assert smiley.flow(function="double") == [
        ("call", "double", 1), ("line", "double", 2), ("return", "double", 2)]


def test_module_body_and_calls_in_order(smiley):
    smiley.record("""\
        def a():
            b()
        def b():
            pass
        a()
        """)
    assert smiley.flow() == [
        ("call", "<module>", 0), ("line", "<module>", 1), ("line", "<module>", 3),
        ("line", "<module>", 5),
        ("call", "a", 1), ("line", "a", 2),
        ("call", "b", 3), ("line", "b", 4), ("return", "b", 4),
        ("return", "a", 2),
        ("return", "<module>", 5)]


def test_call_tree_ids_parents_and_depths(smiley):
    smiley.record("""\
        def leaf(n):
            return n
        def middle(n):
            return leaf(n) + leaf(n + 1)
        middle(1)
        """)
    events = smiley.events()
    calls = {e.seq: e for e in events if e.kind == CALL}
    module = next(e for e in calls.values() if e.code.name == "<module>")
    middle = next(e for e in calls.values() if e.code.name == "middle")
    leaves = [e for e in calls.values() if e.code.name == "leaf"]
    assert module.parent_id is None and module.depth == 0
    assert middle.parent_id == module.call_id and middle.depth == 1
    assert [leaf.parent_id for leaf in leaves] == [middle.call_id] * 2
    assert [leaf.depth for leaf in leaves] == [2, 2]
    # every event of a frame carries that frame's call id
    for event in events:
        assert event.call_id in calls
        assert calls[event.call_id].code == event.code
    assert [e.seq for e in events] == list(range(len(events)))


def test_arguments_locals_and_return_values(smiley):
    smiley.record("""\
        def f(a, b="x"):
            c = a + 1
            d = [c]
            return (c, d)
        f(41)
        """)
    events = [e for e in smiley.events() if e.code.name == "f"]
    assert events[0].kind == CALL and events[0].value == {"a": "41", "b": "'x'"}
    lines = [e for e in events if e.kind == LINE]
    # a line event carries what the frame's previous line changed
    assert [e.value for e in lines] == [None, {"c": "42"}, {"d": "[42]"}]
    ret = events[-1]
    assert ret.kind == RETURN and ret.value == "(42, [42])"


def test_last_assignment_before_return_is_recorded(smiley):
    smiley.record("""\
        def f():
            x = 1
            x = 2
        f()
        """)
    ret = [e for e in smiley.events() if e.code.name == "f"][-1]
    assert ret.kind == RETURN and ret.changes == {"x": "2"}


def test_mutation_in_place_counts_as_a_change(smiley):
    smiley.record("""\
        def f():
            items = []
            items.append(1)
            items.append(2)
            table = {}
            table["k"] = "v"
            return len(items)
        f()
        """)
    changes = [e.value or e.changes for e in smiley.events()
               if e.code.name == "f" and e.kind in (LINE, RETURN)]
    assert {"items": "[1]"} in changes
    assert {"items": "[1, 2]"} in changes
    assert {"table": "{'k': 'v'}"} in changes


def test_unchanged_locals_are_not_repeated(smiley):
    smiley.record("""\
        def f():
            x = 1
            y = 2
            z = x + y
            return z
        f()
        """)
    changes = [e.value for e in smiley.events() if e.code.name == "f" and e.kind == LINE]
    assert changes == [None, {"x": "1"}, {"y": "2"}, {"z": "3"}]


def test_deleted_local_is_recorded(smiley):
    smiley.record("""\
        def f():
            x = 1
            del x
            return 0
        f()
        """)
    changes = [e.value for e in smiley.events() if e.code.name == "f" and e.kind == LINE]
    assert {"x": None} in changes


def test_exception_event_has_type_and_message(smiley):
    smiley.record("""\
        def f():
            raise ValueError("bad value")
        try:
            f()
        except ValueError:
            pass
        """)
    exceptions = [e for e in smiley.events() if e.kind == EXCEPTION]
    assert exceptions[0].code.name == "f"
    assert exceptions[0].value == ["ValueError", "bad value"]
    # the exception is seen again in the caller, where it is handled
    assert [e.code.name for e in exceptions] == ["f", "<module>"]


def test_generators_and_methods_have_qualified_names(smiley):
    smiley.record("""\
        class Counter:
            def count(self, n):
                for i in range(n):
                    yield i
        list(Counter().count(2))
        """)
    names = {name for _, name, _ in smiley.flow()}
    assert "Counter.count" in names
    calls = [e for e in smiley.events() if e.code.name == "Counter.count" and e.kind == CALL]
    assert len(calls) == 3  # each resumption of a generator is a call


def test_threads_are_recorded_with_names(smiley):
    smiley.record("""\
        import threading
        def work(n):
            return n * 2
        t = threading.Thread(target=work, args=(5,), name="worker-1")
        t.start()
        t.join()
        """)
    store = smiley.store()
    try:
        from smiley_like.store import queries
        run_id = queries.resolve_run(store, "last")
        threads = {t.thread_no: t for t in queries.threads(store, run_id)}
    finally:
        store.close()
    assert threads[0].name == "MainThread"
    worker = next(t for t in threads.values() if t.name == "worker-1")
    assert worker.event_count == 3
    work = [e for e in smiley.events() if e.code.name == "work"]
    assert {e.thread_no for e in work} == {worker.thread_no}
    assert work[0].depth == 0 and work[0].parent_id is None


def test_standard_library_and_site_packages_are_not_traced_by_default(smiley):
    smiley.record("""\
        import json
        json.dumps({"a": 1})
        """)
    files = {e.code.path for e in smiley.events()}
    assert len(files) == 1 and files.pop().endswith("prog.py")


def test_trace_stdlib_includes_the_standard_library(smiley):
    smiley.record("""\
        import json
        json.dumps({"a": [1, 2]}, indent=1)
        """, options=["--trace-stdlib"])
    assert any(e.code.path.endswith("json/encoder.py") for e in smiley.events())


def test_exclude_and_include(smiley):
    smiley.script("def helper():\n    return 1\n", name="lib/helper.py")
    smiley.record("""\
        import sys
        sys.path.insert(0, "lib")
        import helper
        helper.helper()
        """, options=["--exclude", "*/lib/*"])
    assert not [e for e in smiley.events() if e.code.path.endswith("helper.py")]


def test_include_a_package_by_name(smiley):
    smiley.record("""\
        import json
        json.dumps([1])
        """, options=["--include", "json"])
    paths = {e.code.path for e in smiley.events()}
    assert any(path.endswith("json/__init__.py") for path in paths)
    assert not any(path.endswith("/re/__init__.py") for path in paths)


def test_run_metadata(smiley):
    smiley.record("print('hi')\n", "arg1")
    run = smiley.last_run()
    assert json.loads(run.command) == ["prog.py", "arg1"]
    assert run.cwd == str(smiley.directory)
    assert run.status == "finished" and run.exit_code == 0
    assert run.started_at <= run.ended_at
    assert run.python.count(".") == 2 and run.hostname and run.pid > 0
    assert run.event_count == len(smiley.events()) == 3


def test_source_is_stored_once_per_content(smiley):
    smiley.record("x = 1\n")
    smiley.record("x = 1\n")
    store = smiley.store()
    try:
        with store.connect() as conn:
            assert conn.exec_driver_sql("select count(*) from source").scalar() == 1
            assert conn.exec_driver_sql("select count(*) from file").scalar() == 2
    finally:
        store.close()


def test_no_locals_records_flow_only(smiley):
    smiley.record("""\
        def f(a):
            b = a + 1
            return b
        f(1)
        """, options=["--no-locals"])
    events = [e for e in smiley.events() if e.code.name == "f"]
    assert [e.kind for e in events] == [CALL, LINE, LINE, RETURN]
    assert all(e.value is None for e in events if e.kind in (CALL, LINE))


def test_generator_resumes_record_only_what_changed(smiley):
    smiley.record("""\
        def gen(n):
            total = 0
            for i in range(n):
                total += i
                yield total
        list(gen(3))
        """)
    calls = [e.value for e in smiley.events() if e.code.name == "gen" and e.kind == CALL]
    assert calls[0] == {"n": "3"}
    assert calls[1:] == [None, None, None]  # nothing changed while it was suspended


def test_generator_expression_does_not_capture_enclosing_variables(smiley):
    smiley.record("""\
        def f(data, k):
            return sum(x * k for x in data)
        f([1, 2, 3], 10)
        """)
    genexpr = [e for e in smiley.events() if e.code.name == "f.<locals>.<genexpr>"]
    seen = set()
    for event in genexpr:
        seen.update((event.value or {}) if event.kind in (CALL, LINE) else event.changes or {})
    assert "x" in seen and "k" not in seen


def test_threads_run_one_after_another_are_told_apart(smiley):
    smiley.record("""\
        import threading
        def work(n):
            return n
        for i in range(3):
            t = threading.Thread(target=work, args=(i,))
            t.start()
            t.join()
        """)
    work = [e for e in smiley.events() if e.code.name == "work" and e.kind == CALL]
    assert len({e.thread_no for e in work}) == 3  # even if the OS reuses thread idents
