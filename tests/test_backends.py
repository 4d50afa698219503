"""The compiled and the Python tracer record the same events for the same programs.

Each program is recorded once per tracer (selected with SMILEY_LIKE_TRACER)
and the event streams are compared whole: kind, thread, function, line,
value, changed locals, raised exception, depth.  Only times and object
addresses (``at 0x...`` in default reprs) may differ.
"""

import contextlib
import os
import re
import sqlite3
import sys

import pytest

from smiley_like.store import compression
from smiley_like.tracer import monitoring
from smiley_like.tracer.recorder import _ctracer
from smiley_like.wire import codec

from conftest import python

pytestmark = pytest.mark.skipif(
    _ctracer is None and os.environ.get("SMILEY_LIKE_TRACER") != "c",
    reason="the C tracer is not built")

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")

# The comparisons run both tracers whatever SMILEY_LIKE_TRACER says: once is
# enough, in the environments of the C tracer (tox.ini).
both_tracers = pytest.mark.skipif(
    os.environ.get("SMILEY_LIKE_TRACER") == "python",
    reason="compares both tracers: run where SMILEY_LIKE_TRACER is c or unset")

PROGRAMS = {
    "functions": """
        import sys

        def f(a, b=2, *rest, **options):
            x = a + b
            items = [1, 2]
            items.append(x)
            table = {"k": 1}
            table["k"] = 2
            table["new"] = items
            del x
            return items, rest, options

        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        def outer():
            v = 5
            def inner():
                return v + 1
            squares = [i * i for i in range(3)]
            total = sum(v for _ in range(2))
            return inner(), squares, total, (lambda q: q * v)(2)

        class Point:
            dims = 2
            def __init__(self, x, y):
                self.x, self.y = x, y
            def __repr__(self):
                return f"Point({self.x}, {self.y})"

        def move(p):
            p.x += 1  # same object, new text: a changed local
            p.y = 7
            return p

        def text(n):
            s = ""
            for i in range(n):
                s += chr(97 + i % 26)
            big = 10 ** 400
            words = s.split("a")
            return len(s), big > 0, len(words)

        print(f(1, 2, 3, flag=True), fib(8), outer(), move(Point(1, 2)), text(60),
              sys.gettrace())
    """,
    "generators": """
        import asyncio

        def gen(n):
            total = 0
            for i in range(n):
                total += i
                received = yield total
                if received:
                    total = 0
            return total

        def pipeline():
            g = gen(4)
            out = [next(g), g.send(True), next(g)]
            out.extend(g)
            return out

        async def step(k):
            await asyncio.sleep(0)
            return k * 2

        async def main():
            values = []
            for k in range(3):
                values.append(await step(k))
            return values

        print(pipeline(), asyncio.run(main()))
    """,
    "exceptions": """
        class Boom(Exception):
            pass

        def inner(k):
            if k > 1:
                raise Boom(f"k={k}")
            return k

        def middle(k):
            try:
                return inner(k)
            finally:
                k = -1

        def outer():
            results = []
            for k in range(4):
                try:
                    results.append(middle(k))
                except Boom as exc:
                    results.append(str(exc))
            return results

        def divide():
            try:
                1 / 0
            except ZeroDivisionError as e:
                error = e
            return repr(error)

        print(outer(), divide())
    """,
    # Exceptions caught where they are raised, caught by the caller, leaving
    # through a finally block, and thrown into generators at their yield:
    # caught and yielding again, not caught, closed.
    "throws": """
        def caught():
            try:
                raise KeyError("inside")
            except KeyError:
                pass
            return 1

        def cleanup():
            return 0

        def passes():
            try:
                return {}["missing"]
            finally:
                cleanup()

        def echo():
            while True:
                try:
                    yield 1
                except ValueError:
                    pass

        def once():
            yield 1
            yield 2

        class Managed:
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return False

        def managed():  # the with block's cleanup re-raises at the yield
            with Managed():
                yield 1

        def quick():
            return 1
            yield

        def both():  # yield from's StopIteration, then a yield on the same line
            x = (yield from quick()) + (yield 2)
            return x

        def run():
            try:
                passes()
            except KeyError:
                pass
            g = echo()
            next(g)
            g.throw(ValueError)
            g.close()
            h = once()
            next(h)
            try:
                h.throw(TypeError("thrown"))
            except TypeError:
                pass
            k = once()
            next(k)
            k.close()
            m = managed()
            next(m)
            m.close()
            b = both()
            next(b)
            try:
                b.send(3)
            except StopIteration as stop:
                assert stop.value == 4
            return caught()

        print(run())
    """,
    "hostile": """
        import sys

        class BadRepr:
            def __repr__(self):
                raise RuntimeError("no repr")

        class BadEq:
            def __eq__(self, other):
                raise ValueError("no eq")
            def __hash__(self):
                raise TypeError("no hash")
            def __repr__(self):
                return "BadEq()"

        class Recursive:
            def __repr__(self):
                return repr(self)

        def hostile():
            a = BadRepr()
            b = BadEq()
            c = Recursive()
            loop = [1, 2]
            loop.append(loop)
            nested = {"self": None}
            nested["self"] = nested
            huge = list(range(200_000))
            huge.append(-1)
            blob = "x" * 1_000_000
            deep = []
            for _ in range(50):
                deep = [deep]
            return len(huge), len(blob), b is b, c is c

        sys.setrecursionlimit(200)
        print(hostile())
    """,
    "default_reprs": """
        class Plain:  # object.__repr__: its text comes from C under the C tracer
            pass

        class Node(Plain):
            def __init__(self, parent):
                self.parent = parent

        def build(n):
            node = None
            for _ in range(n):
                node = Node(node)
                same = node
            return node

        def rename(n):  # the C tracer keeps these texts: a renamed class must show
            plain = Plain()
            for i in range(n):
                current = None
                current = plain
                if i == 1:
                    Plain.__qualname__ = "Renamed"
                if i == 2:
                    Plain.__module__ = "elsewhere"
            return current

        print(type(build(3)).__name__, type(rename(4)).__qualname__)
    """,
    "containers": """
        def grow(n):
            items = []
            table = {}
            for i in range(n):
                items.append(i * 7)  # past 16 elements, and past max_repr characters
                table["k%d" % i] = i / 3
                pair = (i, "x" * (i % 5), None)
                if i % 9 == 0:
                    items[0] = -i  # same length, a new leading element
                if i == 30:
                    items.append([1, 2])  # not atomic: Capture.update decides
                    big = ["y" * 5000, 1]  # a huge element
                    empty, unit = [], ()
                    table[1.5] = b"bytes"
            del pair
            return tuple(items[:20]), table

        def words():
            yield ("a", "b")
            yield ["c"] * 40
            yield {i: str(i) for i in range(25)}

        print(len(grow(60)), list(words())[0])
    """,
    "texts": """
        def texts():
            words = []
            table = {}
            for i in range(40):
                words.append(["it's", 'say "hi"', "back\\\\slash", "tab\\there", "caf\\u00e9",
                              "\\x00\\x7f", "plain", ""][i % 8])
                word = words[-1]  # a str local: its own repr
                sized = "z" * (i % 12)  # as long as the text, or longer
                table[i] = [-2**70, 2**64, -(10**18), 0.1 * i, 1e22, float("nan"), None,
                            True, b"\\x01'", 1j][i % 10]
                if i % 6 == 0:
                    one = (words[-1],)
                    nested = [words[:2], (i,), {"k": i}]
                    wide = {f"key{k}": k * i for k in range(20)}
                    long = list(range(i * 10))
                    table[0] = i  # same length, a new leading value
            return len(words), len(table)

        print(texts())
    """,
    "dicts": """
        class Box:
            pass

        def mutate():
            d = {"a": 1, "b": 2}
            d["a"] = 5
            d["c"] = 3
            del d["c"]
            d.pop("b")
            d.setdefault("z", 9)
            d.update(a=7)
            d.popitem()
            d |= {"m": 1}
            d.__init__(q=1)
            d.clear()
            for i in range(30):  # specialized stores, into the text and past it
                d[i % 20] = i
            box = Box()
            box.x = 1
            attrs = box.__dict__  # a split table: 3.13 stores into it without a new version
            for i in range(30):
                box.x = i
                box.y = -i
            wide = Box()
            for k in range(40):
                setattr(wide, f"a{k}", k)
            more = wide.__dict__  # a combined table
            for i in range(5):
                wide.a0 = i
                wide.a39 = i  # past the text: same mark, no change
            return len(d), len(attrs), len(more)

        print(mutate())
    """,
    "numbers": """
        def numbers():
            seen = 0
            for n in (0, 1, -1, 7, -5, 255, 256, 1023, 1024, -129, 10**9, -10**12,
                      2**63 - 1, -2**63, 2**63, 2**70, -2**70, True, False, 7, 1024):
                value = n
                seen += 1
            small, wide = 3, 123456789012
            half, third = small / 2, 1 / 3
            return value, seen, [n * 1001 for n in range(-20, 20)], {n: -n for n in range(30)}

        print(numbers()[1])
    """,
    "threads": """
        import threading

        results = {}

        def work(name, n):
            acc = 0
            for i in range(n):
                acc += i * i
            results[name] = acc

        class Runner:  # holds the threads out of sight: a Thread's repr races with its state

            def go(self, name):
                self.thread = threading.Thread(target=work, args=(name, 20), name=name)
                # one line: no event of this thread can fall between the new
                # thread's first ones, whichever runs first
                self.thread.start(); self.thread.join()  # noqa: E702

        runner = Runner()
        for name in ("one", "two"):  # one after the other: thread numbers are fixed
            runner.go(name)
        print(sorted(results.items()))
    """,
    # Locals bound to the same nested container line after line, changed in
    # every way that may or may not show in their text (the C tracer skips
    # those whose deep mark still matches; the Python one makes the text).
    "nested": """
        class Plain:
            pass

        def matrix():
            grid = [[row * col for col in range(4)] for row in range(3)]
            total = 0
            for row in grid:
                for value in row:
                    total += value
            grid[1][2] = 99
            grid[0].append(7)
            grid[2] = [5, 5]
            gone = grid.pop(1); grid.insert(1, [1, 2, 3, 4])
            del gone
            grid[1].pop(); grid[1].append(4)
            grid[1].pop(); grid[1].append(5)
            return total

        def mixed():
            table = {"a": [1, 2], "b": (3, [4, 5]), "c": {6, 7}}
            table["a"].append(3)
            table["b"][1][0] = 40
            table["c"].add(8)
            table["c"].discard(6)
            table["d"] = frozenset({(1, 2)})
            # (past what a text of 40 characters shows: a cut address would
            # differ from run to run)
            box = ("forty characters of text, then the list", [Plain()])
            box[1][0] = Plain()
            box[1].append(None)
            deep = [[[[[1]]]]]
            deep[0][0][0][0][0] = 2
            deep[0][0][0][0].append(3)
            deep[0].append(4)
            loop = [1, [2]]
            loop.append(loop)
            loop[1].append(3)
            long = [[i] for i in range(300)]
            long[-1].append(1)
            long[0].append(1)
            long.append([0])
            words = [["x" * 30] * 3 for _ in range(10)]
            words[9][2] = "y"
            words[0][0] = "y"
            return len(table) + len(long)

        print(matrix(), mixed())
    """,
}


def stream(smiley):
    return [(e.kind, e.thread_no, e.code.name, e.line_no, _normal(e.value),
             _normal(e.changes), e.raised, e.depth) for e in smiley.events()]


def _normal(value):
    if isinstance(value, str):
        return _ADDRESS.sub("?", value)
    if isinstance(value, dict):
        return {key: _normal(text) for key, text in value.items()}
    if isinstance(value, list):
        return [_normal(text) for text in value]
    return value


@both_tracers
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_same_events(smiley, name):
    same_events(smiley, name, ())


@both_tracers
@pytest.mark.parametrize("options", [("--no-locals",), ("--calls-only",)])
@pytest.mark.parametrize("name", ["functions", "generators", "exceptions", "throws"])
def test_same_events_with_options(smiley, name, options):
    same_events(smiley, name, options)


@both_tracers
@pytest.mark.parametrize("max_repr", ["4", "40"])
@pytest.mark.parametrize("name", ["numbers", "containers", "texts", "dicts", "nested"])
def test_same_events_with_short_texts(smiley, name, max_repr):
    same_events(smiley, name, ("--max-repr", max_repr))


def same_events(smiley, name, options):
    plain = python(smiley.directory, smiley.script(PROGRAMS[name]))
    streams = {}
    for tracer in ("python", "c"):
        result = smiley("run", *options, "prog.py", env={"SMILEY_LIKE_TRACER": tracer},
                        check=0)
        assert result.stdout == plain.stdout  # the program behaves as under python
        assert smiley.last_run().status == "finished"
        streams[tracer] = stream(smiley)
        assert_packed_as_codec_packs(smiley)
    assert len(streams["c"]) > 20
    assert streams["c"] == streams["python"]


def assert_packed_as_codec_packs(smiley):
    """The last run's stored events are byte for byte what codec.pack makes of them.

    The C tracer writes msgpack itself; the Python tracer's tuples go
    through codec.pack.  The bytes must not tell them apart.
    """
    with contextlib.closing(sqlite3.connect(smiley.database)) as db:
        run_id, = db.execute("select id from run order by started_at desc limit 1").fetchone()
        blobs = [compression.decompress(blob) for blob, in db.execute(
            "select events from chunk where run_id = ?", (run_id,))]
    assert blobs
    for blob in blobs:
        assert codec.pack(codec.unpack(blob)) == blob


def test_calls_only_records_calls_and_returns_without_lines(smiley):
    """Under the tracer this suite runs with (SMILEY_LIKE_TRACER)."""
    smiley.record("""\
        def add(a, b):
            total = a + b
            return total

        def fail():
            raise KeyError("k")

        def squares(n):
            for i in range(n):
                square = i * i
                yield square

        try:
            fail()
        except KeyError:
            pass
        print(add(1, 2), list(squares(3)))
        """, options=("--calls-only",))
    flow = [(kind, function) for kind, function, _ in smiley.flow()]
    assert "line" not in {kind for kind, _ in flow}
    assert ("exception", "fail") in flow
    calls = {e.code.name: e for e in smiley.events() if e.kind == 0}
    returns = {e.code.name: e for e in smiley.events() if e.kind == 2}
    assert calls["add"].value == {"a": "1", "b": "2"}
    assert returns["add"].value == "3" and returns["add"].changes is None
    assert returns["fail"].raised == "KeyError"
    # A generator's first call has its arguments; its resumes, no changed locals.
    generator = [e for e in smiley.events() if e.code.name == "squares"]
    assert [(e.kind, e.value) for e in generator] == [
        (0, {"n": "3"}), (2, "0"), (0, None), (2, "1"), (0, None), (2, "4"), (0, None), (2, "None")]


def test_calls_only_records_the_exceptions_that_end_calls(smiley):
    """Under the tracer this suite runs with (SMILEY_LIKE_TRACER)."""
    smiley.record(PROGRAMS["throws"], options=("--calls-only",))
    events = smiley.events()

    def story(name):
        told = []
        for e in events:
            if e.code.name == name:
                told.append(("call", "line", "return", "exception")[e.kind]
                            + (f" {e.value[0]}" if e.kind == 3 else "")
                            + (f" raised {e.raised}" if e.kind == 2 and e.raised else ""))
        return told

    closed = ["call", "exception GeneratorExit", "return raised GeneratorExit"]
    assert story("caught") == ["call", "return"]
    assert story("cleanup") == ["call", "return"]
    assert story("passes") == ["call", "exception KeyError", "return raised KeyError"]
    assert story("run") == ["call", "return"]
    assert story("echo") == ["call", "return", "call", "return", *closed]
    # 3.13 closes a generator whose yield no try block holds without running it
    assert story("once") == ["call", "return", "call", "exception TypeError",
                             "return raised TypeError", "call", "return",
                             *(closed if sys.version_info < (3, 13) else [])]
    passes = [e for e in events if e.code.name == "passes"]
    assert passes[1].line_no == passes[0].line_no + 2  # where the exception reached it


def test_tracer_is_recorded(smiley):
    smiley.script("print(1)\n")
    for tracer in ("c", "python"):
        smiley("run", "--tracer", tracer, "prog.py", check=0)
        shown = smiley("show", "last", check=0).stdout
        assert re.search(rf"Tracer\s*\|\s*{tracer}\b", shown), shown


def test_unknown_tracer_is_a_usage_error(smiley):
    smiley.script("print(1)\n")
    result = smiley("run", "prog.py", env={"SMILEY_LIKE_TRACER": "fortran"}, check=2)
    assert "unknown tracer 'fortran'" in result.stderr


# -- the C tracer's hook: sys.settrace, or sys.monitoring on 3.12+ -----------

with_monitoring = pytest.mark.skipif(
    not monitoring.available(), reason="sys.monitoring: Python 3.12+ with the C tracer")


@both_tracers
@with_monitoring
@pytest.mark.parametrize("options", [(), ("--calls-only",)])
@pytest.mark.parametrize("name", ["functions", "generators", "exceptions", "throws", "threads"])
def test_same_events_through_either_hook(smiley, name, options):
    """sys.monitoring's callbacks record what the same tracer records under sys.settrace."""
    streams = streams_through(smiley, name, "monitoring", options)
    assert streams["monitoring"] == streams["settrace"]


_SHOWN = {"monitoring": r"c \(sys.monitoring\)", "frame-eval": r"c \(frame evaluation hook\)",
          "settrace": r"c\s*\|"}


def streams_through(smiley, name, hook, options):
    """PROGRAMS[name]'s events, recorded by the C tracer through sys.settrace and *hook*."""
    plain = python(smiley.directory, smiley.script(PROGRAMS[name]))
    streams = {}
    for each in ("settrace", hook):
        result = smiley("run", "--tracer", "c", "--hook", each, *options, "prog.py", check=0)
        assert (result.stdout, result.returncode) == (plain.stdout, plain.returncode)
        shown = smiley("show", "last").stdout
        assert re.search(r"Tracer\s*\|\s*" + _SHOWN[each], shown), shown
        streams[each] = stream(smiley)
    assert len(streams[hook]) > 10
    return streams


@with_monitoring
def test_the_program_keeps_its_own_monitoring_tools(smiley):
    """Every tool id but one stays the program's, and its callbacks see every event."""
    source = """\
        import sys
        mon = sys.monitoring
        starts = []
        mon.use_tool_id(mon.PROFILER_ID, "mine")
        mon.register_callback(mon.PROFILER_ID, mon.events.PY_START,
                              lambda code, offset: starts.append(code.co_name))
        mon.set_events(mon.PROFILER_ID, mon.events.PY_START)
        def work(n):
            return n * 2
        total = sum(work(n) for n in range(5))
        mon.set_events(mon.PROFILER_ID, 0)
        print(total, starts.count("work"), mon.get_tool(mon.PROFILER_ID))
        """
    plain = python(smiley.directory, smiley.script(source))
    assert plain.stdout == "20 5 mine\n"
    result = smiley.record(source)
    assert result.stdout == plain.stdout
    assert [e.code.name for e in smiley.events() if e.kind == 0].count("work") == 5


@pytest.mark.skipif(monitoring.available(), reason="where sys.monitoring cannot be used")
def test_monitoring_hook_where_there_is_none_is_a_usage_error(smiley):
    smiley.script("print(1)\n")
    result = smiley("run", "--hook", "monitoring", "prog.py", check=2)
    assert result.stderr.count("\n") == 1
    assert "sys.monitoring is for the C tracer on Python 3.12 and later" in result.stderr


# -- the frame evaluation hook: --calls-only on 3.11 -------------------------

with_frame_eval = pytest.mark.skipif(
    not monitoring.frame_eval_available(),
    reason="the frame evaluation hook: Python 3.11 with the C tracer")


@both_tracers
@with_frame_eval
@pytest.mark.parametrize("name", ["functions", "generators", "exceptions", "throws", "threads"])
def test_same_events_through_the_frame_evaluation_hook(smiley, name):
    """--calls-only through the frame evaluation hook records what it records
    through sys.settrace."""
    streams = streams_through(smiley, name, "frame-eval", ("--calls-only",))
    assert streams["frame-eval"] == streams["settrace"]


@with_frame_eval
def test_frame_evaluation_hook_names_the_exception_that_leaves(smiley):
    """sys.settrace never shows the exception leaving a frame: a tracer on it names
    the frame's last 'exception' event, here one a finally block caught; the
    frame evaluation hook sees the one that leaves (docs: how it works)."""
    source = """\
        class Leaving(Exception):
            pass

        def h():
            try:
                raise Leaving("out")
            finally:
                try:
                    int("x")
                except ValueError:
                    pass

        try:
            h()
        except Leaving:
            print("caught")
        """
    told = {}
    for hook in ("frame-eval", "settrace"):
        smiley.record(source, options=("--tracer", "c", "--hook", hook, "--calls-only"))
        told[hook] = [(e.kind, e.value[0] if e.kind == 3 else e.raised)
                      for e in smiley.events() if e.code.name == "h"]
    assert told["frame-eval"] == [(0, None), (3, "Leaving"), (2, "Leaving")]
    assert told["settrace"] == [(0, None), (3, "ValueError"), (2, "ValueError")]


@with_frame_eval
def test_calls_only_goes_through_the_frame_evaluation_hook(smiley):
    smiley.script("def f(x):\n    return x + 1\nprint(f(1))\n")
    result = smiley("run", "--tracer", "c", "--calls-only", "prog.py")
    assert result.stdout == "2\n"
    assert re.search(r"Tracer\s*\|\s*c \(frame evaluation hook\)",
                     smiley("show", "last").stdout)
    assert [(e.kind, e.code.name, e.value) for e in smiley.events() if e.code.name == "f"] \
        == [(0, "f", {"x": "1"}), (2, "f", "2")]


def test_frame_eval_hook_is_only_for_calls_only_on_3_11(smiley):
    smiley.script("print(1)\n")
    usable = monitoring.frame_eval_available() \
        and os.environ.get("SMILEY_LIKE_TRACER") != "python"
    result = smiley("run", "--hook", "frame-eval", "prog.py", check=2)
    assert result.stderr.count("\n") == 1
    assert ("the frame-eval hook sees no lines: use it with --calls-only" if usable
            else "the frame-eval hook is for the C tracer on Python 3.11") in result.stderr
    if not usable:
        result = smiley("run", "--hook", "frame-eval", "--calls-only", "prog.py", check=2)
        assert result.stderr.count("\n") == 1


def test_nested_containers_are_not_kept_alive(smiley):
    """What the tracer keeps to know a nested container's text holds none of its objects."""
    source = """\
        import weakref

        class Thing:
            pass

        def work():
            grid = [[Thing()], [1, 2]]
            probe = weakref.ref(grid[0][0])
            total = 0
            for row in grid:
                total += len(row)
            grid[0] = None; alive = probe() is not None
            print("alive" if alive else "gone", total)

        work()
        """
    plain = python(smiley.directory, smiley.script(source))
    assert plain.stdout == "gone 3\n"
    assert smiley.record(source).stdout == plain.stdout
