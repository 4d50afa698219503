"""The C tracer's own text for floats: exactly repr(), or nothing (then repr() is used)."""

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smiley_like.tracer.recorder import _ctracer

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
