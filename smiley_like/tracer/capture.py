"""Safe, bounded text for the values of a traced program.

Capturing a value must never crash or change the traced program, and must cost
O(limit), not O(size of the object): a ten-million-element list costs as much
as a ten-element one.  Builtin containers are walked here, with a budget of
characters; other objects get their own ``__repr__``, guarded against raising
(a marker) and against never returning (a watchdog interrupts it).
"""

import collections
import ctypes
import itertools
import operator
import sys
import threading
import time
import types

_NoneType = type(None)

# Types whose repr depends only on the object's identity or on an immutable
# value: when a local still holds the same object, its text cannot have changed.
_STABLE_TYPES = {
    int, float, complex, bool, _NoneType, str, bytes, range, type,
    types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    types.ModuleType, types.CodeType, types.GeneratorType,
    types.CoroutineType, types.AsyncGeneratorType,
}

_CONTAINER_REPRS = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
    dict: ("{", "}"),
}
_CONTAINER_BASES = (list, tuple, dict, set, frozenset, collections.deque)
# Subclasses of the containers above (Counter, OrderedDict, defaultdict, deque,
# the user's own) longer than this are walked within the budget, not given to
# their own repr, whose cost grows with their size.
_SHORT_CONTAINER = 32
# Room kept for the "... (N items)" marker when the walk runs out of budget.
_MARKER_ROOM = 24
# Element types whose repr is builtin, safe, and as long as their size says.
_ATOMIC = frozenset({int, float, complex, bool, _NoneType, str, bytes})
_getsizeof = sys.getsizeof
_is = operator.is_


class ReprTimeout(BaseException):
    """Raised by the watchdog into a thread whose ``__repr__`` has run too long.

    A BaseException, so that an ``except Exception`` in the user's ``__repr__``
    does not swallow it.
    """


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


class ReprWatchdog:
    """Interrupts a user ``__repr__`` that has not returned after *timeout* seconds.

    ``check()`` is called periodically from another thread (the publisher's);
    it raises :class:`ReprTimeout` into the thread running the repr.  If that
    exception comes too late, after the repr returned, it is absorbed here and
    never reaches the traced program.  (Cancelling it with
    ``PyThreadState_SetAsyncExc(id, NULL)`` is not safe: that leaves the
    interpreter's eval breaker set, and under tracing the next function entry
    then loops forever.)
    """

    def __init__(self, timeout):
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running = {}  # thread ident -> monotonic start
        self._fired = set()

    def call(self, func, value):
        ident = threading.get_ident()
        with self._lock:
            self._running[ident] = time.monotonic()
        timed_out = False
        try:
            result = func(value)
        except ReprTimeout:
            timed_out = True
            result = None
        while True:
            try:
                with self._lock:  # after this block the watchdog cannot fire for us
                    self._running.pop(ident, None)
                    fired = ident in self._fired
                    self._fired.discard(ident)
                if fired and not timed_out:
                    _absorb()
                break
            except ReprTimeout:  # the late one: delivered in our code, not the program's
                timed_out = True
        if timed_out and result is None:
            raise ReprTimeout
        return result

    def after_fork(self):
        """In a forked child: forget the parent's threads (another may have held the lock)."""
        self._lock = threading.Lock()
        self._running = {}
        self._fired = set()

    def check(self):
        if not self._running:
            return
        now = time.monotonic()
        with self._lock:
            for ident, started in self._running.items():
                if now - started > self.timeout and ident not in self._fired:
                    self._fired.add(ident)
                    _set_async_exc(ident, ctypes.py_object(ReprTimeout))


def _builtin_access(tp):
    """True if a container subclass keeps its base's len() and iteration (no user code runs)."""
    base = next(b for b in _CONTAINER_BASES if issubclass(tp, b))
    return tp.__len__ is base.__len__ and tp.__iter__ is base.__iter__ and \
        (base is not dict or tp.items is dict.items)


def _mark(value, tp, elements):
    """(length, leading elements) of a list or dict of atomic values, or None."""
    if tp is dict:
        keys = list(itertools.islice(value, elements))
        values = list(itertools.islice(value.values(), elements))
        if set(map(type, keys)) <= _ATOMIC and set(map(type, values)) <= _ATOMIC:
            return len(value), keys, values
        return None
    head = value[:elements]
    if set(map(type, head)) <= _ATOMIC:
        return len(value), head, None
    return None


def _same_mark(value, tp, mark):
    """True if *value* still has the length and the very same leading elements as *mark*."""
    count, keys, values = mark
    if len(value) != count:
        return False
    elements = len(keys)
    if tp is dict:
        return all(map(_is, itertools.islice(value, elements), keys)) and \
            all(map(_is, itertools.islice(value.values(), elements), values))
    return all(map(_is, value[:elements], keys))


def _int_text(value):
    try:
        return repr(value)
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        return f"<int of {value.bit_length()} bits>"


def _absorb(checks=1_000_000):
    """Run check points until a pending asynchronous exception is raised here."""
    for _ in range(checks):
        pass


class Capture:
    """Turns values into bounded text and finds the locals that changed."""

    def __init__(self, max_repr=200, max_depth=4, repr_timeout=2.0):
        self.max_repr = max_repr
        self.max_depth = max_depth
        self.watchdog = ReprWatchdog(repr_timeout)
        self._stable = set(_STABLE_TYPES)
        self._unstable = set()
        self._slow_types = set()  # types whose repr timed out once: not tried again
        # A change mark covers the elements the text showed (_shown, set by
        # _atomic_head), or else more than any text of max_repr characters can
        # show (an element takes at least three: "1, ").
        self._mark_elements = max_repr // 3 + 2
        self._shown = None

    # -- text of one value -------------------------------------------------

    def text(self, value):
        """Return bounded, safe text for *value*; never raises."""
        self._shown = None
        tp = type(value)
        try:
            if tp is int:
                text = _int_text(value)
            elif tp is bool or tp is float or value is None:
                text = repr(value)
            elif tp is str and len(value) <= self.max_repr:
                text = repr(value)
            elif (tp is list or tp is dict or tp is tuple) and \
                    (text := self._atomic_head(value, tp)) is not None:
                pass
            else:
                text = self._bounded(value, self.max_repr)
                if len(text) > self.max_repr:  # again, leaving room for the "(N items)" marker
                    text = self._bounded(value, max(self.max_repr - _MARKER_ROOM, 8))
        except ReprTimeout:
            return "<repr timed out>"
        except Exception as exc:  # a hostile object: a marker, never a crash
            return f"<repr failed: {type(exc).__name__}>"
        if len(text) > self.max_repr:
            text = text[: self.max_repr - 3] + "..."
        return text

    def _atomic_head(self, value, tp):
        """Text of a list, tuple or dict of atomic values, from repr() of its head: C speed.

        Returns None if the head holds anything else (or very large values);
        the general walk handles those.  The head grows once if the first 16
        elements leave the text short, by as many as their length says fill it.
        """
        count = len(value)
        take = 16
        while True:
            if count <= take:
                head = value
            elif tp is dict:
                head = dict(itertools.islice(value.items(), take))
            else:
                head = value[:take]
            if tp is dict:
                if not (set(map(type, head)) <= _ATOMIC
                        and set(map(type, head.values())) <= _ATOMIC):
                    return None
                size = sum(map(_getsizeof, head)) + sum(map(_getsizeof, head.values()))
            else:
                if not set(map(type, head)) <= _ATOMIC:
                    return None
                size = sum(map(_getsizeof, head))
            if size > 128 * len(head) + 4 * self.max_repr:  # a huge string or int inside
                return None
            try:
                text = repr(head)
            except ValueError:  # an int with more digits than Python will print
                return None
            if len(text) >= self.max_repr or count <= take or take > 16:
                break
            take = int(self.max_repr * take / max(len(text), 1)) + 2
        self._shown = len(head)
        if count > len(head) or len(text) > self.max_repr:
            marker = f"... ({count} items)" + text[-1]
            text = text[: max(self.max_repr - len(marker), 1)] + marker
        return text

    def _bounded(self, value, budget):
        parts = []
        self._walk(value, parts, budget, self.max_depth, set())
        return "".join(parts)

    def _walk(self, value, parts, budget, depth, active):
        """Append text for *value* to *parts*; return the budget left."""
        tp = type(value)
        if tp is str or tp is bytes:
            if len(value) > budget:
                text = repr(value[:budget]) + f"...({len(value)} chars)" if tp is str \
                    else repr(value[:budget]) + f"...({len(value)} bytes)"
            else:
                text = repr(value)
        elif tp is int:
            text = _int_text(value)
        elif tp in _CONTAINER_REPRS:
            return self._walk_container(value, tp, parts, budget, depth, active)
        elif tp in _stable_builtin_reprs or tp.__repr__ is object.__repr__:
            text = repr(value)
        elif isinstance(value, _CONTAINER_BASES) and _builtin_access(tp) \
                and len(value) > _SHORT_CONTAINER:
            return self._walk_subclass(value, tp, parts, budget, depth, active)
        else:
            text = self._foreign(value)
        parts.append(text)
        return budget - len(text)

    def _walk_subclass(self, value, tp, parts, budget, depth, active):
        """``Name(<contents as the builtin base>)`` for a long container subclass."""
        base = next(b for b in (dict, list, tuple, set, frozenset) if isinstance(value, b)) \
            if not isinstance(value, collections.deque) else list
        parts.append(tp.__name__ + "(")
        budget = self._walk_container(value, base, parts, budget - len(tp.__name__) - 1,
                                      depth, active)
        parts.append(")")
        return budget - 1

    def _walk_container(self, value, tp, parts, budget, depth, active):
        opening, closing = _CONTAINER_REPRS[tp]
        if not value:
            text = "set()" if tp is set else "frozenset()" if tp is frozenset else opening + closing
            parts.append(text)
            return budget - len(text)
        if id(value) in active or depth <= 0:
            text = opening + "..." + closing
            parts.append(text)
            return budget - len(text)
        active.add(id(value))
        parts.append(opening)
        budget -= len(opening)
        is_dict = tp is dict
        items = iter(dict.items(value)) if is_dict else iter(value)
        shown = 0
        for item in items:
            if budget <= 0:
                parts.append(f"... ({len(value)} items)")
                break
            if shown:
                parts.append(", ")
                budget -= 2
            if is_dict:
                budget = self._walk(item[0], parts, budget, depth - 1, active)
                parts.append(": ")
                budget = self._walk(item[1], parts, budget - 2, depth - 1, active)
            else:
                budget = self._walk(item, parts, budget, depth - 1, active)
            shown += 1
        if tp is tuple and shown == 1 and len(value) == 1:
            parts.append(",")
        parts.append(closing)
        active.discard(id(value))
        return budget - len(closing)

    def message(self, exc):
        """Bounded ``str(exc)`` of an exception, guarded like a repr."""
        try:
            text = self.watchdog.call(str, exc)
        except ReprTimeout:
            return "<str timed out>"
        except Exception as error:
            return f"<str failed: {type(error).__name__}>"
        return text if len(text) <= self.max_repr else text[: self.max_repr - 3] + "..."

    def _foreign(self, value):
        """The object's own repr, guarded; short container subclasses land here too."""
        tp = type(value)
        if tp in self._slow_types:
            return "<repr timed out>"
        try:
            text = self.watchdog.call(repr, value)
        except ReprTimeout:
            self._slow_types.add(tp)
            return "<repr timed out>"
        except Exception as exc:
            return f"<repr failed: {type(exc).__name__}>"
        return text

    # -- locals of one frame -------------------------------------------------

    def is_stable(self, tp):
        """True if a value of type *tp* keeps its text while it is the same object."""
        if tp in self._stable:
            return True
        if tp in self._unstable:
            return False
        stable = tp.__repr__ is object.__repr__ and tp not in _CONTAINER_REPRS
        (self._stable if stable else self._unstable).add(tp)
        return stable

    def snapshot(self, f_locals, objs, texts, marks):
        """Fill a new frame's state from *f_locals*; return {name: text} of them all."""
        return self.changes(f_locals, objs, texts, marks) or {}

    def changes(self, f_locals, objs, texts, marks):
        """Update the frame's state; return {name: text} of what changed, or None.

        A name still bound to the same object of a stable type is skipped
        here (the compiled tracer makes the same check in C); every other
        name goes to :meth:`update`, and names no longer present to
        :meth:`deleted`.
        """
        stable = self._stable
        update = self.update
        get = objs.get
        changed = None
        for name, value in f_locals.items():
            old = get(name, _MISSING)
            if old is IGNORED or old is value and type(value) in stable:
                continue
            new = update(name, value, objs, texts, marks)
            if new is not None:
                if changed is None:
                    changed = {}
                changed[name] = new
        # Every current name is in objs now, so extra names were deleted.
        if len(objs) > len(f_locals):
            changed = self.deleted(f_locals, objs, texts, marks, changed)
        return changed

    def update(self, name, value, objs, texts, marks):
        """Record that local *name* holds *value*; return its new text, or None if unchanged.

        A name bound to the same object is unchanged if its type's text cannot
        change, or, for a list or dict of atomic values, if its length and the
        identities of its leading elements are the same (its *mark*); otherwise
        its text is recomputed and compared, so a list that was appended to
        counts as changed.
        """
        text = self.text
        old = objs.get(name, _MISSING)
        if old is value:
            tp = type(value)
            if tp in self._stable or tp not in self._unstable and self.is_stable(tp):
                return None
            if tp is list or tp is dict:
                mark = marks.get(name)
                if mark is not None and _same_mark(value, tp, mark):
                    return None
                new = text(value)
                marks[name] = _mark(value, tp, self._shown or self._mark_elements)
            else:
                new = text(value)
            if new == texts[name]:
                return None
        else:
            new = text(value)
            objs[name] = value
            tp = type(value)
            if tp is list or tp is dict:
                marks[name] = _mark(value, tp, self._shown or self._mark_elements)
            else:
                marks.pop(name, None)
            if texts.get(name) == new:
                return None
        texts[name] = new
        return new

    def deleted(self, present, objs, texts, marks, changed):
        """Drop the names no longer in *present* from the state; add them to *changed* as None."""
        for name in [n for n in objs if n not in present and objs[n] is not IGNORED]:
            del objs[name]
            texts.pop(name, None)
            marks.pop(name, None)
            if changed is None:
                changed = {}
            changed[name] = None
        return changed

_MISSING = object()
IGNORED = object()  # in a frame's objs: a name that is never captured
_stable_builtin_reprs = {float, complex, bool, _NoneType, range}
