"""The C tracer's own texts: floats exactly repr() (or nothing: then repr() is used),
containers exactly Capture.text."""

import random
import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smiley_like.tracer.capture import Capture
from smiley_like.tracer.filters import FileFilter
from smiley_like.tracer.recorder import Recorder, _ctracer
from smiley_like.wire import codec

pytestmark = pytest.mark.skipif(_ctracer is None, reason="the C tracer is not built")


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_float_text_is_repr_or_nothing(value):
    assert _ctracer.float_text(value) in (None, repr(value))


def test_float_text_is_repr_on_many_values():
    """Random doubles, random decimals and their neighbours, and typical loop values."""
    rnd = random.Random(20261122)
    taken = 0
    for index in range(300_000):
        kind = index % 4
        if kind == 0:
            value = rnd.uniform(-4, 4)
        elif kind == 1:
            value = rnd.uniform(-1e13, 1e13) * 10.0 ** rnd.randint(-16, 0)
        elif kind == 2:
            value = struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0]
        else:  # short decimals, and the doubles just beside them
            value = round(rnd.uniform(-1000, 1000), rnd.randint(0, 6)) * \
                (1 + rnd.choice((0.0, 2.0**-52, -(2.0**-52))))
        text = _ctracer.float_text(value)
        if text is not None:
            taken += 1
            assert text == repr(value)
    assert taken > 200_000  # the fast path is the usual one


@pytest.mark.parametrize("value", [
    0.1, 0.001, 0.0012345, 1 / 3, 0.30000000000000004, 9.999999999999998,
    0.9999999999999999, 0.009999999999999998, 123.456, -2.75, 10000000000000.5,
    99999999999999.98, 0.0009999999999999998, 1e14, 5e-324, 2.0, 0.5, -0.0,
])
def test_float_text_at_the_edges(value):
    assert _ctracer.float_text(value) in (None, repr(value))


def test_event_times_are_the_monotonic_clock(smiley):
    """Event times, from the TSC where the kernel's clock uses it, agree with perf_counter_ns.

    Each step takes perf_counter_ns inside a call: the call's event comes
    just before it, and long after the previous one.  The run lasts long
    enough (300 ms) for the tracer to have measured the TSC's rate.
    """
    result = smiley.record(
        "import time\n"
        "marks = []\n"
        "def step():\n"
        "    marks.append(time.perf_counter_ns())\n"
        "    time.sleep(0.02)\n"
        "for _ in range(15):\n"
        "    step()\n"
        "print(marks)\n", check=0)
    marks = eval(result.stdout)
    calls = [event.t_ns for event in smiley.events()
             if event.kind == 0 and event.code.name == "step"]
    assert len(calls) == len(marks) == 15
    for call, mark in zip(calls, marks):
        assert 0 <= mark - call < 2_000_000, (call, mark)  # within 2 ms before
    times = [event.t_ns for event in smiley.events()]
    assert times == sorted(times)


def test_tsc_clock_can_be_switched_off():
    assert _ctracer.tsc_clock(False) is False
    assert _ctracer.tsc_clock(True) in (True, False)  # True where the kernel's clock is the TSC


class _Publisher:
    """What the trace function touches of the publisher, without its thread."""

    def __init__(self):
        self.buffer, self.packed, self.defs = [], None, []
        self.max_buffered = sys.maxsize
        self.thread_idents = set()

    def wait_for_room(self):
        pass


def _assign(values):
    for local in values:  # noqa: B007 - the tracer records each value of local
        pass


def _recorded_texts(values, max_repr):
    """The texts the C tracer records for a local bound to each value in turn."""
    publisher = _Publisher()
    recorder = Recorder(FileFilter(), Capture(max_repr=max_repr), publisher, tracer="c",
                        hook="settrace")
    recorder._active = True
    tracer = recorder._make_tracer(0)
    recorder._install(tracer)
    try:
        _assign(values)
    finally:
        recorder._install(None)
    _, data = publisher.packed.take()
    return [event[4]["local"] for event in codec.unpack(data)
            if event[0] == 1 and event[4] and "local" in event[4]]


def _element(rnd):
    kind = rnd.randrange(13)
    if kind == 0:
        return rnd.randrange(-10**6, 10**6)
    if kind == 1:
        return rnd.choice([2**63 - 1, -2**63, 2**63, -2**64, 10**30, -10**50, 0, -1])
    if kind == 2:
        return rnd.uniform(-1e6, 1e6) * rnd.choice([1, 1e-5, 1e10, 1e20])
    if kind == 3:
        return rnd.choice([True, False, None, float("inf"), float("nan"), -0.0, 1e16, 3.0])
    if kind == 4:
        return "".join(rnd.choice("abcxyz ->.") for _ in range(rnd.randrange(12)))
    if kind == 5:  # quotes, backslashes, control characters, non-ASCII
        return "".join(rnd.choice("ab'\"\\\n\t\x00\x7f\xe9\u20ac\U0001f600 ")
                       for _ in range(rnd.randrange(6)))
    if kind == 6:
        return "w" * rnd.randrange(60, 400)
    if kind == 7:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(6)))
    if kind == 8:
        return complex(rnd.random(), -rnd.random())
    if kind == 9:  # not atomic: Capture.update decides
        return rnd.choice([[1, 2], (3,), {"a": 1}])
    if kind == 10:  # more digits than repr() may print, with a low int_max_str_digits
        return 7 ** rnd.randrange(100, 3000)
    return rnd.randrange(100)


def _container(rnd):
    n = rnd.choice([0, 1, 2, 5, 15, 16, 17, 20, 40, 70, 100, 300])
    mode = rnd.randrange(3)

    def element():
        if mode == 0:
            return rnd.randrange(-1000, 10**6)
        if mode == 1:
            return "".join(rnd.choice("abcdefgh") for _ in range(rnd.randrange(1, 15)))
        return _element(rnd)

    shape = rnd.randrange(3)
    if shape == 0:
        return [element() for _ in range(n)]
    if shape == 1:
        return tuple(element() for _ in range(n))
    table = {}
    for _ in range(n):
        try:
            table[element()] = element()
        except TypeError:  # an unhashable key
            pass
    return table


@pytest.mark.parametrize("max_repr", [8, 9, 12, 20, 40, 57, 80, 200, 1000])
def test_container_texts_are_capture_texts(max_repr):
    """Lists, tuples and dicts of every atomic kind, short and long, for every cut."""
    rnd = random.Random(max_repr)
    values = [_container(rnd) for _ in range(600)]
    digits = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(1000)
    try:
        capture = Capture(max_repr=max_repr)
        expected = []
        for value in values:
            text = capture.text(value)
            if not expected or expected[-1] != text:  # the same text again is no change
                expected.append(text)
        assert _recorded_texts(values, max_repr) == expected
    finally:
        sys.set_int_max_str_digits(digits)
