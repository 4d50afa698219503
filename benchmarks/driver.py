"""Run one script as ``__main__`` in this process, optionally under a no-op tracer, and time it.

Usage: python driver.py [--noop | --null-c | --null-c-calls | --null-frame-eval]
                        TIMING_FILE SCRIPT [ARGS...]

The script runs through ``runpy.run_path`` with its own ``sys.argv`` and
``sys.path[0]``, as under plain ``python``.  The elapsed time from just before
the script's first line to just after its last is written as JSON to
TIMING_FILE, so the script's own stdout and stderr are left untouched.

``--noop`` installs the cheapest possible settrace recorder in every thread:
it keeps tracing (returns itself) in frames of the script's file, where
smiley-like would record, and returns None elsewhere (the standard library),
where smiley-like's file filter stops tracing too.  That is the floor for any
recorder written in Python on sys.settrace.

``--null-c`` installs, in every thread, a C trace function that records
nothing (smiley-like's ``_ctracer.install_null``): the floor for any recorder
on CPython's trace hook, as the compiled tracer is.  ``--null-c-calls`` turns
off line events in every frame, as ``--calls-only`` does.

``--null-frame-eval`` (Python 3.11) installs a frame evaluation function
(PEP 523) that records nothing: the floor under ``--calls-only``'s hook there.
"""

import json
import os
import runpy
import sys
import threading
import time


def install_noop_tracer(script_path):
    def noop_local(frame, event, arg):
        return noop_local

    def noop_call(frame, event, arg):
        # runpy compiles the script under exactly this path, so one comparison decides.
        return noop_local if frame.f_code.co_filename == script_path else None

    threading.settrace(noop_call)
    sys.settrace(noop_call)


def install_null_tracer(lines):
    from smiley_like.tracer import _ctracer

    def first_call(frame, event, arg):  # in a new thread: swap in the C function
        _ctracer.install_null(lines)

    threading.settrace(first_call)
    _ctracer.install_null(lines)


def install_null_frame_eval(on=True):
    from smiley_like.tracer import _ctracer

    _ctracer.install_null_frame_eval(on)


def remove_tracer():
    sys.settrace(None)
    threading.settrace(None)


def main(argv):
    tracer = argv[0] if argv[:1] in (["--noop"], ["--null-c"], ["--null-c-calls"],
                                     ["--null-frame-eval"]) else None
    if tracer:
        argv = argv[1:]
    timing_file, script, *args = argv
    sys.argv[:] = [script, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    start = time.perf_counter()
    try:
        if tracer == "--noop":
            install_noop_tracer(script)
        elif tracer == "--null-frame-eval":
            install_null_frame_eval()
        elif tracer:
            install_null_tracer(lines=tracer == "--null-c")
        runpy.run_path(script, run_name="__main__")
    finally:
        remove_tracer()
        if tracer == "--null-frame-eval":
            install_null_frame_eval(False)
        elapsed = time.perf_counter() - start
        with open(timing_file, "w") as handle:
            json.dump({"seconds": elapsed}, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
