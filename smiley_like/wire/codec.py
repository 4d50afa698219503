"""Batches of events <-> ZeroMQ frames.  msgpack only: nothing received is ever unpickled.

A message is a list of frames::

    [MAGIC, header, payload...]

``MAGIC`` names the protocol and its version, so anything else on the socket is
rejected before it is parsed.  ``header`` is a msgpack map with ``kind``,
``run``, ``pid`` and ``batch`` (the sender's message counter, from 0, used to
detect lost batches).  The payload depends on the kind:

``start``   one map describing the run (command line, cwd, ...).
``events``  two frames: the new definitions (files, code objects, threads)
            and the events, each a msgpack array; the header adds ``seq``
            (the first event's sequence number) and ``count``.
``end``     one map describing how the program ended.
"""

import dataclasses
import gc

import msgpack

from smiley_like.errors import WireError

WIRE_VERSION = 1
MAGIC = b"smiley-like/%d" % WIRE_VERSION
KINDS = {"start": 1, "events": 2, "end": 1}  # kind -> number of payload frames

# Strings from the traced program may hold lone surrogates (file names, argv,
# text returned by a __repr__): pass them through rather than fail a batch.
_UNICODE_ERRORS = "surrogatepass"


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True, unicode_errors=_UNICODE_ERRORS)


def unpack(data):
    # A batch unpacks into tens of thousands of small containers, and each few
    # hundred would start a garbage collection: pause it (this is 3x faster).
    paused = gc.isenabled()
    gc.disable()
    try:
        return msgpack.unpackb(data, raw=False, unicode_errors=_UNICODE_ERRORS,
                               strict_map_key=False)
    finally:
        if paused:
            gc.enable()


@dataclasses.dataclass
class Message:
    """One decoded message; ``payload`` holds the kind's frames, still packed."""

    kind: str
    run_id: str
    pid: int
    batch: int
    header: dict
    payload: list


def encode(kind, header, *payload):
    """Return the frames of one message; *header* must hold run, pid and batch."""
    header = dict(header, kind=kind)
    return [MAGIC, pack(header), *payload]


def encode_start(run_id, pid, info):
    return encode("start", {"run": run_id, "pid": pid, "batch": 0}, pack(info))


class PackedEvents:
    """Events the C tracer packed already: their number and their msgpack array, as bytes.

    The bytes are what :func:`pack` makes of the same events as tuples, so
    receivers cannot tell which tracer sent them.
    """

    __slots__ = ("count", "data")

    def __init__(self, count, data):
        self.count = count
        self.data = data

    def __len__(self):
        return self.count


def encode_events(run_id, pid, batch, seq, defs, events):
    """*events* is a list of event tuples, or :class:`PackedEvents`."""
    header = {"run": run_id, "pid": pid, "batch": batch, "seq": seq, "count": len(events)}
    data = events.data if isinstance(events, PackedEvents) else pack(events)
    return encode("events", header, pack(defs), data)


def encode_end(run_id, pid, batch, info):
    return encode("end", {"run": run_id, "pid": pid, "batch": batch}, pack(info))


def decode(frames):
    """Return the :class:`Message` in *frames*, or raise WireError saying why not."""
    if not frames or bytes(frames[0]) != MAGIC:
        first = bytes(frames[0][:32]) if frames else b""
        if first.startswith(b"smiley-like/"):
            raise WireError(f"unsupported wire version {first.decode('ascii', 'replace')!r}")
        raise WireError("not a smiley-like message")
    if len(frames) < 2:
        raise WireError("message has no header")
    try:
        header = unpack(bytes(frames[1]))
    except Exception as exc:
        raise WireError(f"unreadable header: {exc}") from exc
    if not isinstance(header, dict):
        raise WireError("header is not a map")
    kind = header.get("kind")
    if kind not in KINDS:
        raise WireError(f"unknown message kind {kind!r}")
    run_id, pid, batch = header.get("run"), header.get("pid"), header.get("batch")
    if not (isinstance(run_id, str) and run_id and len(run_id) <= 64
            and _counter(pid) and _counter(batch)):
        raise WireError("header lacks run, pid or batch")
    payload = [bytes(frame) for frame in frames[2:]]
    if len(payload) != KINDS[kind]:
        raise WireError(f"{kind} message has {len(payload)} payload frames, "
                        f"expected {KINDS[kind]}")
    if kind == "events" and not (_counter(header.get("seq"))
                                 and _counter(header.get("count"))):
        raise WireError("events header lacks seq or count")
    return Message(kind, run_id, pid, batch, header, payload)


def _counter(value):
    """A non-negative integer that a database integer can hold."""
    return type(value) is int and 0 <= value < 2**62


def _decode_payload(data, expected, name):
    try:
        value = unpack(data)
    except Exception as exc:
        raise WireError(f"unreadable payload: {exc}") from exc
    if not isinstance(value, expected):
        raise WireError(f"payload is not {name}")
    return value


def decode_map(data):
    """Unpack a start or end payload, which must be a map."""
    return _decode_payload(data, dict, "a map")


def decode_list(data):
    """Unpack a definitions or events payload, which must be an array."""
    return _decode_payload(data, list, "an array")
