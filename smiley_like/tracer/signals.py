"""Signal handlers that fire inside our trace function.

CPython runs Python signal handlers at its next check point, and many of
those are in our trace function.  A handler's exception (the default SIGINT
handler raises KeyboardInterrupt) must reach the program, but raised in the
middle of our code it could be caught there (capture guards every __repr__
with ``except Exception``).  So each Python-level handler is wrapped: when the
frame it interrupts is ours, whatever it raises is parked in ``pending``, and
the trace function raises it at its own boundary, where it lands in the
program's frame exactly as under plain python.  (Deferring the signal itself
does not work: after any check point in the program's code, the next one is
in our trace function again.)
"""

import signal

from smiley_like.tracer import PACKAGE_DIR

_real_signal = signal.signal
_real_getsignal = signal.getsignal


try:
    from smiley_like.tracer._ctracer import in_tracer
except ImportError:  # only the Python tracer: its frames show where we are
    def in_tracer():
        return False


def is_ours(frame):
    """True if a handler given *frame* interrupted our code, not the program's.

    The compiled tracer runs without a frame of its own, so there the frame is
    the program's, and ``in_tracer()`` tells.
    """
    return frame.f_code.co_filename.startswith(PACKAGE_DIR) or in_tracer()


class SignalGuard:
    """Installs wrappers around the program's signal handlers."""

    def __init__(self):
        self._handlers = {}  # signal number -> the program's own handler
        self.pending = []  # exceptions handlers raised in our frames, for the tracer to raise
        self._hidden = {}  # signal number -> our own handler, which the program does not see

    def install(self):
        current = _real_getsignal(signal.SIGINT)
        if callable(current):
            self._wrap(signal.SIGINT, current)
        signal.signal = self._user_signal
        signal.getsignal = self._user_getsignal

    def hide(self, signum, handler):
        """Install our *handler* for *signum*; the program sees the default handler there.

        It outlives :meth:`uninstall` (it may have to run while the recording
        finishes); its owner puts the default back.
        """
        _real_signal(signum, handler)
        self._hidden[signum] = handler

    def uninstall(self):
        signal.signal = _real_signal
        signal.getsignal = _real_getsignal
        # Hidden handlers stay: their owner removes them when it is done (see hide).
        for signum, handler in self._handlers.items():
            try:
                _real_signal(signum, handler)
            except (ValueError, OSError):  # not the main thread any more
                pass
        self._handlers.clear()

    def _wrap(self, signum, handler):
        def guarded(signum, frame):
            if frame is None or not is_ours(frame):
                return handler(signum, frame)
            try:
                return handler(signum, frame)  # the default SIGINT handler raises
            except BaseException as exc:
                self.pending.append(exc)
                return None

        _real_signal(signum, guarded)
        self._handlers[signum] = handler

    def _user_signal(self, signum, handler):
        previous = self._user_getsignal(signum)
        if callable(handler):
            self._wrap(signum, handler)
        else:
            _real_signal(signum, handler)
            self._handlers.pop(signum, None)
        return previous

    def _user_getsignal(self, signum):
        handler = self._handlers.get(signum)
        if handler is not None:
            return handler
        handler = _real_getsignal(signum)
        if handler is not None and handler is self._hidden.get(signum):
            return signal.SIG_DFL
        return handler
