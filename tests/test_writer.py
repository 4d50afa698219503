"""The store writer's stack walk: the fast version against a plain loop, on random event streams."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smiley_like.events import CALL, EXCEPTION, LINE, RETURN
from smiley_like.store.writer import walk


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


def _event(draw_kind, thread_no, t_ns, line_no, code_id):
    if draw_kind == CALL:
        return [CALL, thread_no, t_ns, line_no, {"n": "1"}, code_id]
    if draw_kind == LINE:
        return [LINE, thread_no, t_ns, line_no, None]
    if draw_kind == RETURN:
        return [RETURN, thread_no, t_ns, line_no, "1", None]
    return [EXCEPTION, thread_no, t_ns, line_no, ["ValueError", "bad"]]


events_strategy = st.lists(
    st.builds(_event, st.sampled_from([CALL, LINE, LINE, RETURN, EXCEPTION]),
              st.integers(0, 3), st.integers(0, 2**40), st.integers(1, 500),
              st.integers(1, 9)),
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


@pytest.mark.parametrize("events", [
    [[LINE, 0, 1]],  # too short
    [[9, 0, 1, 2, None]],  # no such kind
    [[CALL, 0, 1, 2, {}, "code"]],  # code id not a number
    [[CALL, 0, 1, 2, {}]],  # call without a code id
    [[EXCEPTION, 0, 1, 2, "ValueError"]],  # exception not [type, message]
    [[LINE, [0], 1, 2, None]],  # thread number not a number
    [[LINE, 0, 2**64, 2, None]],  # time too big to store
    [[LINE, 0, "now", 2, None]],
])
def test_walk_rejects_events_it_cannot_store(events):
    with pytest.raises((ValueError, TypeError, IndexError)):  # what Monitor.handle rejects
        walk({}, 0, events)
