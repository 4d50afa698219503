"""The store writer's stack walk: the fast versions against a plain loop, on random event streams.

walk() works on decoded events; scan() on the packed bytes as they arrive,
with the compiled scanner when it is built (``_walk_packed``) and by decoding
and walking otherwise (``scan_decoded``).  Both are held to the same rules.
"""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smiley_like.events import CALL, EXCEPTION, LINE, RETURN
from smiley_like.errors import WireError
from smiley_like.store import writer
from smiley_like.store.writer import scan_decoded, walk
from smiley_like.wire import codec

SCANS = [pytest.param(scan_decoded, id="python")]
if writer._walk_packed is not None:
    SCANS.append(pytest.param(
        lambda stacks, seq, packed: writer._walk_packed(stacks, seq, packed, codec.unpack),
        id="c"))


def reference_walk(stacks, seq, events):
    """The rules, one event at a time: what walk() must compute."""
    codes = {entry[1] for stack in stacks.values() for entry in stack}
    stats = {}
    for event in events:
        kind, thread_no = event[0], event[1]
        stack = stacks.setdefault(thread_no, [])
        if kind == CALL:
            stack.append([seq, event[5]])
            codes.add(event[5])
            code_id = event[5]
        elif not stack:
            code_id = 0
        elif kind == RETURN:
            code_id = stack.pop()[1]
        else:
            code_id = stack[-1][1]
            if kind == EXCEPTION:
                stack[-1][2:] = [event[4][0]]
        entry = stats.setdefault(thread_no, [0, seq, seq, event[2], event[2], code_id])
        entry[0] += 1
        entry[2], entry[4], entry[5] = seq, event[2], code_id
        seq += 1
    return codes, stats


# What a local's text or an exception's fields may be: anything msgpack carries (but NaN,
# which is not equal to itself, so stacks holding one would never compare equal).
values_strategy = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=40) | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5) | st.integers(-2**63, 2**64 - 1), inner, max_size=3),
    max_leaves=8)


def _event(draw_kind, thread_no, t_ns, line_no, code_id, value, name):
    if draw_kind == CALL:
        return [CALL, thread_no, t_ns, line_no, {"n": value}, code_id]
    if draw_kind == LINE:
        return [LINE, thread_no, t_ns, line_no, None if value == 0 else {"x": value}]
    if draw_kind == RETURN:
        return [RETURN, thread_no, t_ns, line_no, value, None] if code_id % 2 else \
            [RETURN, thread_no, t_ns, line_no, None, {"y": value}, True]
    return [EXCEPTION, thread_no, t_ns, line_no, [name, value]]


events_strategy = st.lists(
    st.builds(_event, st.sampled_from([CALL, LINE, LINE, RETURN, EXCEPTION]),
              st.integers(0, 3), st.integers(0, 2**40), st.none() | st.integers(-1, 70000),
              st.integers(1, 9) | st.integers(0, 2**63 - 1), values_strategy,
              st.text(max_size=20) | values_strategy),
    max_size=200)

stacks_strategy = st.dictionaries(
    st.integers(0, 3), st.lists(st.lists(st.integers(0, 50), min_size=2, max_size=2),
                                max_size=4), max_size=3)


@settings(max_examples=300, deadline=None)
@given(stacks=stacks_strategy, seq=st.integers(0, 10**6), events=events_strategy)
def test_walk_agrees_with_the_one_event_at_a_time_rules(stacks, seq, events):
    fast_stacks, slow_stacks = copy.deepcopy(stacks), copy.deepcopy(stacks)
    assert walk(fast_stacks, seq, events) == reference_walk(slow_stacks, seq, events)
    assert {t: s for t, s in fast_stacks.items() if s} == \
        {t: s for t, s in slow_stacks.items() if s}


def reference_scan(stacks, seq, events):
    """What scan() must compute: walk's rules, the count, each thread's last line."""
    codes, stats = reference_walk(stacks, seq, events)
    return len(events), codes, stats, {thread_no: events[entry[2] - seq][3]
                                       for thread_no, entry in stats.items()}


@pytest.mark.parametrize("scan", SCANS)
@settings(max_examples=300, deadline=None)
@given(stacks=stacks_strategy, seq=st.integers(0, 10**6), events=events_strategy)
def test_scan_agrees_with_the_one_event_at_a_time_rules(scan, stacks, seq, events):
    fast_stacks, slow_stacks = copy.deepcopy(stacks), copy.deepcopy(stacks)
    assert scan(fast_stacks, seq, codec.pack(events)) == \
        reference_scan(slow_stacks, seq, events)
    assert {t: s for t, s in fast_stacks.items() if s} == \
        {t: s for t, s in slow_stacks.items() if s}


MALFORMED = [
    [[LINE, 0, 1]],  # too short
    [[9, 0, 1, 2, None]],  # no such kind
    [[CALL, 0, 1, 2, {}, "code"]],  # code id not a number
    [[CALL, 0, 1, 2, {}]],  # call without a code id
    [[EXCEPTION, 0, 1, 2, "ValueError"]],  # exception not [type, message]
    [[LINE, [0], 1, 2, None]],  # thread number not a number
    [[LINE, 0, 2**64, 2, None]],  # time too big to store
    [[LINE, 0, "now", 2, None]],
    [[True, 0, 1, 2, None]],  # a kind that is not an integer
    [[1.0, 0, 1, 2, None]],
]


@pytest.mark.parametrize("events", MALFORMED)
def test_walk_rejects_events_it_cannot_store(events):
    with pytest.raises((ValueError, TypeError, IndexError)):  # what Monitor.handle rejects
        walk({}, 0, events)


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("packed", [
    codec.pack(events) for events in MALFORMED if events[0][2] != 2**64] + [
    b"\x91\x95\x01\x00\xcf" + b"\xff" * 8 + b"\x02\xc0",  # time too big to store
    codec.pack({"not": "a list"}),
    codec.pack([[LINE, 0, 1, 2, None]]) + b"\x00",  # trailing bytes
    codec.pack([[LINE, 0, 1, 2, None]])[:-1],  # truncated
    b"\x91\x95\x01\x00\x01\x02\xa2\xff\xfe",  # a str that is not UTF-8
    b"\x91" * 1100 + b"\x00",  # nested deeper than msgpack goes
    codec.pack([[LINE, 0, 1, 2, None]]).replace(b"\xc0", b"\xc1"),  # a byte msgpack never uses
    b"\xdd\xff\xff\xff\xff",  # an array longer than the data
])
def test_scan_rejects_what_cannot_be_stored_or_decoded(scan, packed):
    with pytest.raises((ValueError, TypeError, IndexError, WireError)):
        scan({}, 0, packed)


@pytest.mark.parametrize("scan", SCANS)
def test_scan_takes_lone_surrogates_and_big_values(scan):
    events = [[CALL, 0, 5, None, {"s": "\udc80", "n": 2**64 - 1}, 2**40],
              [EXCEPTION, 0, 6, 3, [2**64 - 1, "x"]], [LINE, 1, 7, 2**64 - 1, None]]
    stacks = {}
    count, codes, stats, lines = scan(stacks, 10, codec.pack(events))
    assert (count, codes, lines) == (3, {2**40}, {0: 3, 1: 2**64 - 1})
    assert stacks == {0: [[10, 2**40, 2**64 - 1]]}
    assert stats == {0: [2, 10, 11, 5, 6, 2**40], 1: [1, 12, 12, 7, 7, 0]}
