"""Signal handlers that fire inside our trace function.

CPython runs Python signal handlers at its next check point, and the entry of
our trace function is one.  A handler that raises there (the default SIGINT
handler raises KeyboardInterrupt) makes the exception appear in the traced
frame, exactly where the program would see it under plain python; but CPython
also drops a trace function that raises.  So each Python-level handler is
wrapped: when the frame it interrupts is ours, ``before_raise(frame)`` is
called first, which arranges for tracing to be put back right after the
exception has gone through.  (Deferring the signal instead does not work:
after any check point in the program's code, the next one is in our trace
function again.)
"""

import os
import signal

OUR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

_real_signal = signal.signal
_real_getsignal = signal.getsignal


def is_ours(frame):
    return frame.f_code.co_filename.startswith(OUR_DIR)


class SignalGuard:
    """Installs wrappers around the program's signal handlers."""

    def __init__(self, before_raise):
        self._before_raise = before_raise  # frame -> callable undoing it, or None
        self._handlers = {}  # signal number -> the program's own handler

    def install(self):
        current = _real_getsignal(signal.SIGINT)
        if callable(current):
            self._wrap(signal.SIGINT, current)
        signal.signal = self._user_signal
        signal.getsignal = self._user_getsignal

    def uninstall(self):
        signal.signal = _real_signal
        signal.getsignal = _real_getsignal
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
            undo = self._before_raise(frame)
            result = handler(signum, frame)  # usually raises KeyboardInterrupt
            if undo is not None:  # it did not raise: nothing to put back
                undo()
            return result

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
        return handler if handler is not None else _real_getsignal(signum)
