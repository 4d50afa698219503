"""The wire codec: round trips, and anything that is not ours is rejected, never unpickled."""

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smiley_like.errors import WireError
from smiley_like.wire import codec

texts = st.text(max_size=20)
event = st.tuples(st.integers(0, 3), st.integers(0, 10), st.integers(0, 2**63 - 1),
                  st.integers(0, 10**6),
                  st.none() | st.dictionaries(texts, texts | st.none()) | texts)


@given(st.lists(event, max_size=50), st.integers(0, 2**31), st.integers(0, 2**40))
def test_events_round_trip(events, batch, seq):
    frames = codec.encode_events("a" * 32, 1234, batch, seq,
                                 [("code", 1, 1, "f", 3)], [list(e) for e in events])
    message = codec.decode(frames)
    assert (message.kind, message.run_id, message.pid, message.batch) == (
        "events", "a" * 32, 1234, batch)
    assert message.header["seq"] == seq and message.header["count"] == len(events)
    assert codec.decode_list(message.payload[1]) == [list(e) for e in events]
    assert codec.decode_list(message.payload[0]) == [["code", 1, 1, "f", 3]]


def test_start_and_end_round_trip():
    info = {"argv": ["x.py", "\udcff"], "cwd": "/tmp"}
    message = codec.decode(codec.encode_start("b" * 32, 1, info))
    assert message.kind == "start" and codec.decode_map(message.payload[0]) == info
    message = codec.decode(codec.encode_end("b" * 32, 1, 9, {"status": "finished"}))
    assert message.kind == "end" and message.batch == 9


@pytest.mark.parametrize("frames, reason", [
    ([], "not a smiley-like message"),
    ([b"hello"], "not a smiley-like message"),
    ([pickle.dumps({"kind": "start"})], "not a smiley-like message"),
    ([b"smiley-like/99", b""], "unsupported wire version"),
    ([codec.MAGIC], "no header"),
    ([codec.MAGIC, b"\xc1garbage"], "unreadable header"),
    ([codec.MAGIC, codec.pack([1, 2])], "not a map"),
    ([codec.MAGIC, codec.pack({"kind": "shutdown", "run": "r", "pid": 1, "batch": 0})],
     "unknown message kind"),
    ([codec.MAGIC, codec.pack({"kind": "start", "run": 5, "pid": 1, "batch": 0}), b""],
     "lacks run"),
    ([codec.MAGIC, codec.pack({"kind": "events", "run": "r", "pid": 1, "batch": 0}), b"", b""],
     "lacks seq"),
    ([codec.MAGIC, codec.pack({"kind": "end", "run": "r", "pid": 1, "batch": 0})],
     "payload frames"),
])
def test_garbage_is_rejected_with_a_reason(frames, reason):
    with pytest.raises(WireError, match=reason):
        codec.decode(frames)


@given(st.binary(max_size=200))
def test_random_payloads_never_crash_the_decoder(data):
    for decode in (codec.decode_map, codec.decode_list):
        try:
            decode(data)
        except WireError:
            pass


def test_truncated_payload_is_rejected():
    frames = codec.encode_events("c" * 32, 1, 1, 0, [], [[1, 0, 5, 3, None]] * 100)
    message = codec.decode(frames)
    with pytest.raises(WireError):
        codec.decode_list(message.payload[1][:-7])
