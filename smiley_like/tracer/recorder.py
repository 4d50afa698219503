"""The trace function: turns events of wanted code into compact tuples.

This runs on someone else's hot path, for every line of their program.  It
decides "do we trace this?" once per code object, returns None for code it
skips so CPython stops calling it there, compares locals instead of
re-serialising them, and hands tuples to the publisher's buffer without
locking.  It never raises into the traced program.
"""

import dis
import hashlib
import inspect
import itertools
import os
import sys
import threading
import time
import tokenize

from smiley_like.errors import UsageError
from smiley_like.events import CALL, EXCEPTION, LINE, RETURN
from smiley_like.tracer import monitoring
from smiley_like.tracer.capture import IGNORED
from smiley_like.tracer.signals import SignalGuard

try:
    from smiley_like.tracer import _ctracer
except ImportError as exc:  # not built: no compiler at install time, or another Python
    _ctracer = None
    _CTRACER_MISSING = str(exc)

_real_settrace = sys.settrace
_real_gettrace = sys.gettrace
_real_threading_settrace = threading.settrace
_real_threading_gettrace = getattr(threading, "gettrace", None)
_real_setprofile = sys.setprofile
_real_getprofile = sys.getprofile

_MISSING = object()
_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
# The instructions a frame leaves by normally; at a 'return' event on any
# other, an exception is leaving it (settrace passes None in both cases).
_NORMAL_EXITS = frozenset(dis.opmap[name] for name in ("RETURN_VALUE", "RETURN_CONST",
                                                       "YIELD_VALUE") if name in dis.opmap)
# Python 3.13 reports a yield at the RESUME just after its YIELD_VALUE.
_YIELDED_AT_RESUME = sys.version_info >= (3, 13)
_RESUME, _YIELD_VALUE = dis.opmap["RESUME"], dis.opmap["YIELD_VALUE"]
_MAX_INTERNAL_ERRORS = 100
TRACERS = ("c", "python")


_CONSUMING = frozenset(dis.opmap[name] for name in ("FOR_ITER", "SEND", "END_SEND", "END_FOR")
                       if name in dis.opmap)


def _at_yield(code, lasti):
    op = code[lasti]
    return op == _YIELD_VALUE or (_YIELDED_AT_RESUME and op == _RESUME and lasti >= 2
                                  and code[lasti - 2] == _YIELD_VALUE)


def _how_left(code, lasti, thrown_at):
    """At a 'return' event on instruction *lasti*: 1 a return, 2 a yield, 0 an exception.

    sys.settrace passes None for an exception leaving as for a return of None:
    an exception leaves on any instruction but those.  A generator that an
    exception thrown in at its yield leaves is back at that yield (a with
    block's cleanup re-raises with the instruction restored): *thrown_at* is
    the yield of an 'exception' event with no line at or before it since.
    """
    if _at_yield(code, lasti):
        return 0 if lasti == thrown_at else 2
    return 1 if code[lasti] in _NORMAL_EXITS else 0


def choose_tracer(name="auto"):
    """The tracer to record with: "c" or "python"; "auto" is c when it is built."""
    name = (name or "auto").lower()
    if name == "auto":
        return "c" if _ctracer is not None else "python"
    if name not in TRACERS:
        raise UsageError(f"unknown tracer {name!r}: choose c, python or auto")
    if name == "c" and _ctracer is None:
        raise UsageError(f"the C tracer is not available ({_CTRACER_MISSING}); "
                         "reinstall smiley-like with a C compiler, or use the python tracer")
    return name


def _display_path(path):
    """A file name that survives a trip through UTF-8 (non-UTF-8 names are mangled visibly)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def read_source(path):
    """Return (sha1 hex, text) of a source file, or (None, None) if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None, None
    try:
        encoding, _ = tokenize.detect_encoding(iter(data.splitlines(True)).__next__)
    except SyntaxError:
        encoding = "utf-8"
    return hashlib.sha1(data).hexdigest(), data.decode(encoding, "replace")


class _ThreadEnd:
    """Kept in a thread's thread-local data: when that is cleared, the thread has ended."""

    __slots__ = ("defs", "thread_no", "pid")

    def __init__(self, defs, thread_no):
        self.defs, self.thread_no, self.pid = defs, thread_no, os.getpid()

    def __del__(self):
        if os.getpid() == self.pid:  # not in a forked child, where the thread never was
            self.defs.append(("thread_end", self.thread_no, time.perf_counter_ns()))

    def dismiss(self):
        self.pid = None


class Recorder:
    """Installs the trace function in every thread and feeds the publisher."""

    def __init__(self, file_filter, capture, publisher, *, trace_locals=True, stderr=None,
                 tracer="auto", calls_only=False, hook="auto"):
        self.filter = file_filter
        self.tracer = choose_tracer(tracer)
        # How the C tracer hears of events: sys.monitoring on 3.12+, the frame
        # evaluation hook for --calls-only on 3.11, else sys.settrace (the
        # Python tracer: always).
        self.hook = monitoring.choose_hook(self.tracer, hook, calls_only)
        # monitoring.Monitoring or FrameEval while recording through either
        self._monitoring = None
        # How a thread's trace function is put in place (None takes it away):
        # from C, or through sys.settrace's trampoline.
        self._install = _real_settrace if self.tracer == "python" \
            else _ctracer.install if self.hook == "settrace" else _ctracer.monitor_thread
        self.capture = capture
        self.publisher = publisher
        self.trace_locals = trace_locals
        # No line events: traced frames get f_trace_lines = False, and a
        # return event carries no changed locals.
        self.calls_only = calls_only
        self.notes = []  # what the run should remember: displaced tracing, our own errors
        self._stderr = stderr or sys.stderr
        self._codes = {}  # code object -> code id, or None for code we skip
        self._module_codes = set()  # ids of module bodies: their "arguments" are globals
        self._resumable = set()  # ids of generators and coroutines: state kept across resumes
        self._ignored = {}  # code id -> names not captured (a genexpr's enclosing variables)
        self._files = {}  # file name -> file number
        self._code_ids = itertools.count(1)
        self._file_nos = itertools.count(1)
        self._thread_nos = itertools.count(0)
        self._tracers = {}  # thread ident -> that thread's trace function
        self._thread_of = {}  # thread ident -> that thread's number
        self._thread_data = threading.local()
        self._user_trace = {}  # thread ident -> trace function the program installed
        self._user_thread_hook = None
        self._internal_errors = 0
        self._said = set()
        self._active = False
        self._signals = SignalGuard()
        self._pid = os.getpid()

    # -- starting and stopping ---------------------------------------------

    def start(self):
        """Trace the calling thread (from its next new frame) and every thread started later."""
        self._active = True
        if threading.current_thread() is threading.main_thread():
            self._signals.install()
        sys.settrace, sys.gettrace = self._user_settrace, self._user_gettrace
        threading.settrace = self._user_threading_settrace
        if _real_threading_gettrace is not None:
            threading.gettrace = lambda: self._user_thread_hook
        self._start_monitoring()
        _real_threading_settrace(self._thread_started)
        self._install(self._tracer_for_this_thread())

    def stop(self):
        """Stop tracing and put the interpreter's own functions back."""
        if not self._active:
            return
        self._active = False
        ident = threading.get_ident()
        end = getattr(self._thread_data, "end", None)
        if end is not None and threading.current_thread() is threading.main_thread():
            end.dismiss()  # the main thread ends with the recording
            self.publisher.defs.append(("thread_end", end.thread_no, time.perf_counter_ns()))
        current = _real_gettrace()
        if current is not None and current is not self._tracers.get(ident) \
                and current is not self._user_trace.get(ident):
            self._note_displaced("a trace function installed from C (coverage, a debugger)")
        _real_settrace(None)
        _real_threading_settrace(None)
        self._stop_monitoring()
        self._signals.uninstall()
        sys.settrace, sys.gettrace = _real_settrace, _real_gettrace
        threading.settrace = _real_threading_settrace
        if _real_threading_gettrace is not None:
            threading.gettrace = _real_threading_gettrace

    def forked(self, follow):
        """In a forked child: go on tracing its one thread as a new process, or stop.

        Called (by the session) first thing in the child, with the publisher
        about to start over.  With *follow*, returns what the child's stream
        must begin with: the definitions its events may refer to (every file
        and code object, and this thread), and a call event for each frame
        being traced on this thread's stack, outermost first, with its
        variables, so that the child's record opens where the parent was.
        """
        ident = threading.get_ident()
        # Only the thread that forked lives on in the child.
        self._tracers = {key: value for key, value in self._tracers.items() if key == ident}
        self._user_trace = {key: value for key, value in self._user_trace.items()
                            if key == ident}
        self._thread_of = {key: value for key, value in self._thread_of.items()
                           if key == ident}
        self._pid = os.getpid()
        if not (follow and self._active):
            self._active = False
            _real_settrace(None)
            _real_threading_settrace(None)
            self._stop_monitoring()
            self.publisher.abandon()
            return [], []
        known = self.publisher.known_defs()
        defs = [item for item in known if item[0] in ("file", "code")]
        thread_no = self._thread_of.get(ident)
        events = []
        if thread_no is not None:
            name = threading.current_thread().name
            defs.append(("thread", thread_no, ident, threading.get_native_id(), name,
                         time.perf_counter_ns()))
            self._thread_data.end = _ThreadEnd(self.publisher.defs, thread_no)
            events = self._open_frames(thread_no)
        return defs, events

    def _open_frames(self, thread_no):
        """Call events re-opening this thread's traced frames, outermost first."""
        frames = []
        frame = sys._getframe(1)
        while frame is not None:
            code_id = self._codes.get(frame.f_code)
            if code_id is not None and frame.f_trace is not None:
                frames.append((frame, code_id))
            frame = frame.f_back
        events = []
        now = time.perf_counter_ns()
        for frame, code_id in reversed(frames):
            args = None
            if self.trace_locals and code_id not in self._module_codes:
                try:
                    args = self.capture.snapshot(frame.f_locals, {}, {}, {})
                except Exception as exc:
                    self._internal_error(exc)
            events.append((CALL, thread_no, now, frame.f_lineno, args, code_id))
        return events

    def _start_monitoring(self):
        """Register the sys.monitoring callbacks or the frame evaluation hook, where
        that is the hook."""
        if self.hook == "frame-eval":
            self._monitoring = monitoring.FrameEval(self._frame_eval_too_deep)
        if self.hook != "monitoring":
            return
        try:
            self._monitoring = monitoring.Monitoring(self.calls_only)
        except RuntimeError as exc:  # no tool id free: the program uses them all
            self.hook, self._install = "settrace", _ctracer.install
            self._note(f"recorded through sys.settrace: {exc}")

    def _frame_eval_too_deep(self):
        """A thread's C stack nears its end under the frame evaluation hook.

        Every Python call nests a C call there, so a program recursing as deep
        as 3.11 lets it would crash: the recording goes on through
        sys.settrace instead, in every thread, which inlines calls again.
        Frames under way record their returns through their f_trace.
        """
        self._stop_monitoring()
        self.hook, self._install = "settrace", _ctracer.install
        alive = sys._current_frames()
        for ident, tracer in list(self._tracers.items()):
            # (displaced: the program's trace function stays)
            if ident in alive and ident not in self._user_trace:
                _ctracer.install_in_thread(ident, tracer)
        self._note("went on through sys.settrace: the program's recursion went deeper than "
                   "the frame evaluation hook's C stack allows")

    def _stop_monitoring(self):
        if self._monitoring is not None:
            self._monitoring.close()
            self._monitoring = None

    def hide_signal_handler(self, signum, handler):
        """Handle *signum* ourselves, while the program still sees the default there."""
        self._signals.hide(signum, handler)

    # -- definitions: once per code object, file and thread -----------------

    def _register_code(self, code):
        """Decide whether *code* is traced; return its id, or None."""
        filename = code.co_filename
        if not self._active or not self.filter.wanted(filename):
            self._codes[code] = None
            return None
        file_no = self._files.get(filename)
        if file_no is None:
            file_no = self._files[filename] = next(self._file_nos)
            digest, text = read_source(filename)
            self.publisher.defs.append(("file", file_no, _display_path(filename), digest, text))
        code_id = self._codes[code] = next(self._code_ids)
        if code.co_name == "<module>":
            self._module_codes.add(code_id)
        if code.co_flags & _RESUMABLE:
            self._resumable.add(code_id)
        if self._monitoring is not None:
            self._monitoring.traced(code)
        if code.co_name == "<genexpr>" and code.co_freevars:
            # The enclosing function's variables: shown in its own frame already,
            # and often large (the data the expression iterates over).
            self._ignored[code_id] = code.co_freevars
        self.publisher.defs.append(
            ("code", code_id, file_no, code.co_qualname, code.co_firstlineno))
        return code_id

    def _tracer_for_this_thread(self, new_thread=False):
        """This thread's trace function; a thread just started always gets a new one.

        (Thread idents are reused once a thread has ended.)
        """
        ident = threading.get_ident()
        tracer = None if new_thread else self._tracers.get(ident)
        if tracer is None:
            thread_no = next(self._thread_nos)
            current = threading.current_thread()
            self.publisher.defs.append(
                ("thread", thread_no, ident, threading.get_native_id(), current.name,
                 time.perf_counter_ns()))
            tracer = self._tracers[ident] = self._make_tracer(thread_no)
            self._thread_of[ident] = thread_no
            # Dropped with the thread's state when the thread ends: says when.
            self._thread_data.end = _ThreadEnd(self.publisher.defs, thread_no)
        return tracer

    def _thread_started(self, frame, event, arg):
        """threading's hook: runs first in every new thread."""
        if threading.get_ident() in self.publisher.thread_idents \
                or getattr(threading.current_thread(), "smiley_like_own", False):
            # never trace ourselves
            _real_settrace(None)
            return None
        if self._user_thread_hook is not None:
            self._note_displaced("threading.settrace", frame)
            _real_settrace(self._user_thread_hook)
            return self._user_thread_hook(frame, event, arg)
        if not self._active:
            return None
        tracer = self._tracer_for_this_thread(new_thread=True)
        self._install(tracer)
        if self._monitoring is not None:
            _real_settrace(None)  # only here to learn of the thread
            if self.hook == "monitoring":
                # sys.monitoring tells us of this call next (sys.settrace's
                # own tool is called first): recording it here too would
                # make two.  The frame evaluation hook has let it pass.
                return None
        return tracer(frame, event, arg)

    # -- the hot path --------------------------------------------------------

    def _make_tracer(self, thread_no):
        if self.tracer == "c":
            return self._make_c_tracer(thread_no)
        return self._make_python_tracer(thread_no)

    def _make_c_tracer(self, thread_no):
        """The compiled equivalent of the Python tracer below, fed the same state."""
        capture = self.capture
        if self.publisher.packed is None:
            # Every thread's tracer writes msgpack into this one buffer.
            self.publisher.packed = _ctracer.EventBuffer()
        return _ctracer.Tracer(
            thread_no=thread_no, buffer=self.publisher.packed,
            limit=self.publisher.max_buffered, wait_for_room=self.publisher.wait_for_room,
            codes=self._codes, register_code=self._register_code,
            update=capture.update, deleted=capture.deleted, changes=capture.changes,
            text=capture.text, message=capture.message, stable=capture._stable,
            trace_locals=self.trace_locals, calls_only=self.calls_only,
            pending=self._signals.pending,
            raise_pending=self._raise_pending, interrupted=self._interrupted,
            internal_error=self._internal_error, module_codes=self._module_codes,
            resumable=self._resumable, ignored=self._ignored, ignored_marker=IGNORED,
            normal_exits=_NORMAL_EXITS, max_repr=capture.max_repr, max_depth=capture.max_depth)

    def _make_python_tracer(self, thread_no):
        buffer = self.publisher.buffer
        append = buffer.append
        now = time.perf_counter_ns
        codes_get = self._codes.get
        register = self._register_code
        capture = self.capture
        snapshot, changes, text = capture.snapshot, capture.changes, capture.text
        message = capture.message
        trace_locals = self.trace_locals
        calls_only = self.calls_only
        changed_locals = trace_locals and not calls_only  # at resumes and returns
        publisher = self.publisher
        internal_error = self._internal_error
        interrupted = self._interrupted
        limit = publisher.max_buffered
        pending = self._signals.pending
        raise_pending = self._raise_pending
        module_codes = self._module_codes
        resumable = self._resumable
        ignored = self._ignored

        def trace_call(frame, event, arg):
            # The global trace function: CPython calls it for 'call' events only.
            code = frame.f_code
            code_id = codes_get(code, _MISSING)
            if code_id is _MISSING:
                code_id = register(code)
            if code_id is None:
                if pending:
                    raise_pending(frame)
                return None
            state = None
            if code_id in resumable:  # a generator resumed: go on from its last state
                state = getattr(frame.f_trace, "smiley_state", None)
            try:
                if state is not None:
                    objs, texts, marks = state
                    # --calls-only records arguments, not changed locals: none here
                    args = changes(frame.f_locals, objs, texts, marks) \
                        if changed_locals else None
                else:
                    objs = dict.fromkeys(ignored[code_id], IGNORED) if code_id in ignored else {}
                    texts = {}
                    marks = {}
                    args = snapshot(frame.f_locals, objs, texts, marks) if trace_locals else None
                if code_id in module_codes:
                    args = None
                append((CALL, thread_no, now(), frame.f_lineno, args, code_id))
                if len(buffer) > limit:
                    publisher.wait_for_room()
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    interrupted(frame)
                    raise
                internal_error(exc)
                return None

            # The yield an exception was thrown in at, until a line at or
            # before it shows the frame running on (-1: none); with
            # --calls-only, the frame's last 'exception' event, held until the
            # frame ends and recorded only if an exception ends it (line,
            # [type, message]).
            thrown_at = -1
            held = None

            def trace_local(frame, event, arg):
                nonlocal thrown_at, held
                try:
                    if event == "line":
                        # exception handlers lie after the yield: a line at or
                        # before it is the frame running on
                        if thrown_at >= 0 and frame.f_lasti <= thrown_at:
                            thrown_at = -1
                        if calls_only:  # lines are on only to see this (below)
                            if thrown_at < 0:
                                frame.f_trace_lines = False
                        else:
                            append((LINE, thread_no, now(), frame.f_lineno,
                                    changes(frame.f_locals, objs, texts, marks)
                                    if trace_locals else None))
                    elif event == "return":
                        changed = changes(frame.f_locals, objs, texts, marks) \
                            if changed_locals else None
                        normal = _how_left(frame.f_code.co_code, frame.f_lasti, thrown_at)
                        thrown_at = -1
                        if normal:
                            append((RETURN, thread_no, now(), frame.f_lineno, text(arg), changed))
                        else:
                            if held is not None:
                                append((EXCEPTION, thread_no, now(), *held))
                            append((RETURN, thread_no, now(), frame.f_lineno, None, changed,
                                    True))
                        held = None
                    elif event == "exception":
                        exception = [getattr(arg[0], "__qualname__", "?"), message(arg[1])]
                        code, lasti = frame.f_code.co_code, frame.f_lasti
                        if arg[0] is StopIteration and lasti >= 0 and code[lasti] in _CONSUMING:
                            pass  # a for loop's, yield from's or await's end: never leaves
                        elif calls_only:
                            held = (frame.f_lineno, exception)
                        if lasti >= 0 and _at_yield(code, lasti):
                            thrown_at = lasti  # thrown in at this yield
                            if calls_only:  # see the line event above
                                frame.f_trace_lines = True
                        if not calls_only:
                            append((EXCEPTION, thread_no, now(), frame.f_lineno, exception))
                    if len(buffer) > limit:
                        publisher.wait_for_room()
                except BaseException as exc:
                    if isinstance(exc, KeyboardInterrupt):
                        interrupted(frame)
                        raise
                    internal_error(exc)
                if pending:
                    raise_pending(frame)
                return trace_local

            if code_id in resumable:
                trace_local.smiley_state = (objs, texts, marks)
            if calls_only:
                frame.f_trace_lines = False
            if pending:
                raise_pending(frame)
            return trace_local

        return trace_call

    def _interrupted(self, frame):
        """A KeyboardInterrupt raised in our code, not by a signal handler: let it through."""
        self._restore_after_raise(frame)

    def _raise_pending(self, frame):
        """Raise what a signal handler raised in our frames, into the program's *frame*."""
        exc = self._signals.pending.pop(0)
        del self._signals.pending[:]
        self._restore_after_raise(frame)
        raise exc

    def _restore_after_raise(self, frame):
        """Put tracing back right after an exception leaves our trace function.

        CPython drops a trace function that raises (and *frame*'s local one).
        A one-shot profile hook, called at this thread's next call or return,
        reinstalls both.
        """
        tracer = self._tracers.get(threading.get_ident())
        if not self._active or tracer is None:
            return
        local = frame.f_trace
        previous = _real_getprofile()

        def restore(_frame, _event, _arg):
            _real_setprofile(previous)
            if self._active:
                self._install(tracer)
                if local is not None and frame.f_trace is None:
                    frame.f_trace = local
                self._note("a signal handler's exception went through the tracer; "
                           "tracing was put back")

        _real_setprofile(restore)

    def _note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def _internal_error(self, exc):
        self._internal_errors += 1
        if self._internal_errors == 1:
            note = f"internal error in the tracer: {type(exc).__name__}: {exc}"
            self.notes.append(note)
            self._say(note + " (the program goes on; some events are missing)")
        if self._internal_errors >= _MAX_INTERNAL_ERRORS:
            self._active = False
            self._install(None)

    # -- a program that installs its own trace function ---------------------

    def _user_settrace(self, func):
        ident = threading.get_ident()
        if func == self._thread_started:  # threading's bootstrap installing our own hook
            _real_settrace(func)
            return
        if func is None:
            # Under plain python there is nothing to remove; if the program is
            # removing its own trace function, recording resumes.
            if self._monitoring is not None:
                _real_settrace(None)  # ours is not a trace function: nothing replaces it
            if self._user_trace.pop(ident, None) is not None and self._active:
                tracer = self._tracers.get(ident)
                if tracer is not None:
                    self.notes.append(f"tracing resumed in thread {threading.current_thread().name}")
                    self._install(tracer)
            return
        self._user_trace[ident] = func
        self._note_displaced("sys.settrace", sys._getframe(1))
        if self._monitoring is not None:
            self._install(None)  # as sys.settrace displaces the trace function
        _real_settrace(func)

    def _user_gettrace(self):
        return self._user_trace.get(threading.get_ident())

    def _user_threading_settrace(self, func):
        self._user_thread_hook = func

    def _note_displaced(self, how, frame=None):
        where = f" at {frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else ""
        note = (f"tracing displaced by {how}{where} in thread "
                f"{threading.current_thread().name}")
        self.notes.append(note)
        self._say(f"the program installed its own trace function ({how}{where}); "
                  "its events are not recorded while that is active", key="displaced")

    def _say(self, text, key=None):
        key = key or text
        if key in self._said:
            return
        self._said.add(key)
        try:
            self._stderr.write(f"smiley-like: {text}\n")
            self._stderr.flush()
        except Exception:
            pass
