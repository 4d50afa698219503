"""Plain records that travel from the tracer to the store and back out to readers.

The tracer emits events as tuples, because building a tuple is the cheapest thing
the hot path can do; these constants name their positions.  Readers get the
richer :class:`Event`, with the call tree filled in.
"""

import dataclasses
import typing

#: Event kinds, in settrace's own words.  The integers are what the wire and the
#: store hold.
CALL, LINE, RETURN, EXCEPTION = 0, 1, 2, 3
KIND_NAMES = ("call", "line", "return", "exception")
KINDS = {name: number for number, name in enumerate(KIND_NAMES)}

# An event tuple as the tracer builds it:
#   call:       (CALL, thread_no, t_ns, line_no, args, code_id)
#   line:       (LINE, thread_no, t_ns, line_no, changed_locals)
#   return:     (RETURN, thread_no, t_ns, line_no, value_text, changed_locals[, True])
#   exception:  (EXCEPTION, thread_no, t_ns, line_no, [type_name, message])
# ``args`` and ``changed_locals`` map names to text; a name mapped to None was
# deleted.  ``changed_locals`` is None when nothing changed.  A line event's
# changes are what the frame's previous line did (settrace reports a line
# before it runs); a return event's changes are what its last line did.
# ``args`` is None for module bodies, whose "arguments" would be their globals.
CODE = 5  # position of a call event's code id
CHANGES = 5  # position of a return event's changed locals
RAISED = 6  # a return event has True here when an exception is leaving the frame


@dataclasses.dataclass(frozen=True, slots=True)
class Code:
    """A traced function (a code object) of one run."""

    code_id: int
    file_no: int
    path: str
    name: str
    first_line: int


class Event(typing.NamedTuple):
    """One recorded event, as readers see it."""

    seq: int
    kind: int
    thread_no: int
    t_ns: int
    call_id: int
    parent_id: int | None
    depth: int
    code: Code
    line_no: int
    value: typing.Any
    changes: dict | None = None  # a return event's changed locals
    raised: str | None = None  # a return event ending the frame by this exception type

    @property
    def kind_name(self):
        return KIND_NAMES[self.kind]


#: call id of a frame whose call was not seen (a lost batch, or a late start)
UNKNOWN_CALL = -1


def unknown_code(code_id):
    """A stand-in for a code object whose definition was not stored."""
    return Code(code_id, 0, "?", f"<unknown code {code_id}>", 0)


_NONE = type(None)
# The types of value each kind of event has; anything else was not sent by a
# tracer of ours, and readers get a harmless stand-in (a line event, line 0).
_SHAPES = {LINE: (dict, _NONE), CALL: (dict, _NONE), RETURN: (str, _NONE), EXCEPTION: (list,)}
_LINE_TYPES = (int, _NONE)


def _malformed(event, seq, code_map):
    thread_no = event[1] if isinstance(event, (list, tuple)) and len(event) > 1 \
        and type(event[1]) is int else 0
    return Event(seq, LINE, thread_no, 0, UNKNOWN_CALL, None, 0, unknown_code(0), 0, None)


def rebuild(event, seq, stacks, code_map):
    """The :class:`Event` for tuple *event* numbered *seq*, advancing the call *stacks*.

    ``stacks`` maps thread numbers to lists of open frames, ``[call_id,
    code_id(, last exception type)]``, as the store keeps them at each chunk's
    start; readers (replay, the live monitor) use this one set of rules.
    """
    try:
        kind, thread_no, t_ns, line_no, value = event[:5]
    except (TypeError, ValueError):
        kind = None
    if kind not in _SHAPES or type(value) not in _SHAPES[kind] \
            or type(line_no) not in _LINE_TYPES or type(thread_no) is not int:
        return _malformed(event, seq, code_map)
    stack = stacks.get(thread_no)
    if stack is None:
        stack = stacks[thread_no] = []
    if kind == CALL:
        parent_id = stack[-1][0] if stack else None
        stack.append([seq, event[CODE]])
    if stack:
        call_id, code_id = stack[-1][:2]
        if kind != CALL:
            parent_id = stack[-2][0] if len(stack) > 1 else None
    else:  # a frame whose call was not stored (a lost batch)
        call_id, code_id, parent_id = UNKNOWN_CALL, 0, None
    depth = max(len(stack) - 1, 0)
    raised = None
    if stack:
        top = stack[-1]
        if kind == EXCEPTION:  # remembered for the frame's return, to name what left it
            top[2:] = [value[0]]
        elif kind == RETURN:
            if len(event) > RAISED and event[RAISED]:
                raised = top[2] if len(top) > 2 else "an exception"
            stack.pop()
    code = code_map.get(code_id) or unknown_code(code_id)
    changes = event[CHANGES] if kind == RETURN and len(event) > CHANGES else None
    return Event(seq, kind, thread_no, t_ns, call_id, parent_id, depth, code, line_no, value,
                 changes, raised)
