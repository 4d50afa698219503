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
