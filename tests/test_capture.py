"""Safe bounded text for values: property tests of the shipped Capture class."""

import collections

from hypothesis import given, settings
from hypothesis import strategies as st

from smiley_like.tracer.capture import Capture

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(),
    lambda children: st.lists(children) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5), children) | st.frozensets(st.integers()),
    max_leaves=30)


@given(values, st.integers(min_value=8, max_value=300))
def test_text_is_bounded_and_never_raises(value, limit):
    text = Capture(max_repr=limit).text(value)
    assert isinstance(text, str)
    assert len(text) <= limit


@given(values)
def test_short_values_read_exactly_like_repr(value):
    expected = repr(value)
    if len(expected) <= 200 and "..." not in expected:
        assert Capture(max_repr=200, max_depth=50).text(value) == expected


def test_cost_does_not_depend_on_size():
    capture = Capture(max_repr=50)
    big = list(range(5_000_000))
    text = capture.text(big)
    assert text.startswith("[0, 1, 2") and len(text) <= 50


def test_depth_limit():
    nested = [[[[[1]]]]]
    assert Capture(max_depth=2).text(nested) == "[[[...]]]"


def test_subclasses_keep_their_own_repr():
    counter = collections.Counter("aab")
    assert Capture().text(counter) == "Counter({'a': 2, 'b': 1})"


def test_changes_detects_rebinding_mutation_and_deletion():
    capture = Capture()
    objs, texts, marks = {}, {}, {}
    items = [1]
    assert capture.snapshot({"items": items, "n": 1}, objs, texts, marks) == {
        "items": "[1]", "n": "1"}
    assert capture.changes({"items": items, "n": 1}, objs, texts, marks) is None
    items.append(2)
    assert capture.changes({"items": items, "n": 1}, objs, texts, marks) == {"items": "[1, 2]"}
    assert capture.changes({"items": items, "n": 2}, objs, texts, marks) == {"n": "2"}
    assert capture.changes({"n": 2}, objs, texts, marks) == {"items": None}
    # a new object with the same text is not a change
    assert capture.changes({"n": 1 + 1}, objs, texts, marks) is None


class Hostile:
    def __eq__(self, other):
        raise RuntimeError("eq")

    def __hash__(self):
        raise RuntimeError("hash")

    def __repr__(self):
        raise RuntimeError("repr")


def test_objects_whose_eq_hash_and_repr_raise():
    capture = Capture()
    objs, texts, marks = {}, {}, {}
    value = Hostile()
    assert capture.snapshot({"h": value}, objs, texts, marks) == {"h": "<repr failed: RuntimeError>"}
    assert capture.changes({"h": value}, objs, texts, marks) is None
    assert capture.text([value, {1: value}]) == (
        "[<repr failed: RuntimeError>, {1: <repr failed: RuntimeError>}]")


@settings(max_examples=50)
@given(st.text())
def test_strings_with_any_code_points_give_printable_text(text):
    shown = Capture(max_repr=1000).text(text)
    shown.encode("utf-8")  # lone surrogates are escaped, not passed through


def test_changes_through_equal_but_different_elements():
    """1 == True == 1.0 and 0.0 == -0.0, but their texts differ: still a change."""
    capture = Capture()
    objs, texts, marks = {}, {}, {}
    values = [1, 0.0]
    table = {"k": 1}
    capture.snapshot({"values": values, "table": table}, objs, texts, marks)
    values[0] = True
    assert capture.changes({"values": values, "table": table}, objs, texts, marks) == {
        "values": "[True, 0.0]"}
    values[1] = -0.0
    table["k"] = 1.0
    assert capture.changes({"values": values, "table": table}, objs, texts, marks) == {
        "values": "[True, -0.0]", "table": "{'k': 1.0}"}
    assert capture.changes({"values": values, "table": table}, objs, texts, marks) is None


def test_a_change_within_the_shown_elements_of_a_long_list_is_seen():
    capture = Capture(max_repr=60)
    objs, texts, marks = {}, {}, {}
    names = [f"name{i}" for i in range(1000)]
    capture.snapshot({"names": names}, objs, texts, marks)
    assert capture.changes({"names": names}, objs, texts, marks) is None
    names[2] = "changed"
    changed = capture.changes({"names": names}, objs, texts, marks)
    assert "'changed'" in changed["names"]
    names[900] = "far away, not shown"
    assert capture.changes({"names": names}, objs, texts, marks) is None  # text is the same
    names.append("more")
    assert "(1001 items)" in capture.changes({"names": names}, objs, texts, marks)["names"]
