"""Start-up hook of a Python process started by a program smiley-like records.

This directory is put first on PYTHONPATH for the program's child processes
(see smiley_like/tracer/follow.py).  It takes itself off sys.path, runs the
sitecustomize module it shadows (if any) as Python would have, then records
this process into the parent's run.
"""

import os
import sys


def _start():
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path
                   if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    try:
        if spec is not None:  # the one we shadow: it becomes sitecustomize, as it would have been
            module = importlib.util.module_from_spec(spec)
            sys.modules["sitecustomize"] = module
            spec.loader.exec_module(module)
    finally:  # even if it fails: Python then reports its error as it would have
        try:
            from smiley_like.tracer import follow
        except ImportError:  # another Python, without smiley-like: run untraced
            pass
        else:
            follow.bootstrap()


_start()
del _start
