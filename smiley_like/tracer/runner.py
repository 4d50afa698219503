"""Run a script or module exactly as ``python`` would, and say how it ended.

The program must not be able to tell it is traced: the same ``sys.argv``,
``__main__`` module, ``__file__``, ``sys.path[0]``, tracebacks (without our
frames) and exit status as under plain ``python``.
"""

import builtins
import dataclasses
import importlib.machinery
import os
import runpy
import sys
import traceback
import types

from smiley_like.errors import UsageError
from smiley_like.tracer import PACKAGE_DIR



@dataclasses.dataclass
class Target:
    """What to run: a script path or a module name, and its arguments."""

    script: str | None = None
    module: str | None = None
    args: list = dataclasses.field(default_factory=list)

    @property
    def argv(self):
        return [self.script if self.script is not None else "-m " + self.module, *self.args]


@dataclasses.dataclass
class Outcome:
    """How the program ended, as data for the run record."""

    status: str = "finished"  # finished | error | interrupted
    exit_code: int = 0
    exc_type: str | None = None
    exc_message: str | None = None
    traceback: str | None = None


def _find_module(name):
    """Find a module's spec without importing anything (the import itself is traced later)."""
    path = None
    spec = None
    parts = name.split(".")
    for index, part in enumerate(parts):
        spec = importlib.machinery.PathFinder.find_spec(part, path)
        if spec is None:
            return None
        if index < len(parts) - 1:
            path = spec.submodule_search_locations
            if path is None:
                return None
    return spec


def check(target):
    """Raise UsageError now for a target that cannot run, before anything is started."""
    if target.script is not None:
        if not os.path.exists(target.script):
            raise UsageError(f"cannot run '{target.script}': no such file")
        if not os.access(target.script, os.R_OK):
            raise UsageError(f"cannot run '{target.script}': permission denied")
    else:
        saved = sys.path[0]
        sys.path[0] = os.getcwd()
        try:
            found = _find_module(target.module)
        finally:
            sys.path[0] = saved
        if found is None:
            raise UsageError(f"cannot run module '{target.module}': no module named "
                             f"'{target.module}'")


def _prepare_script(target):
    script = target.script
    sys.argv[:] = [script, *target.args]
    path = os.path.join(os.getcwd(), script)  # python's __file__: joined, not normalised
    if os.path.isdir(script) or not script.endswith((".py", ".pyw")) and _is_zip(script):
        sys.path[0] = script  # a directory or zip with __main__.py, as python does
        return None
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__builtins__ = builtins
    main.__spec__ = None
    main.__package__ = None
    main.__cached__ = None
    sys.modules["__main__"] = main
    return main


def _is_zip(path):
    import zipfile

    return zipfile.is_zipfile(path)


def _strip_our_frames(tb):
    """The traceback without our frames: the runner's, and the tracer's if a signal hit it."""
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(PACKAGE_DIR):
            kept.append(tb)
        tb = tb.tb_next
    for outer, inner in zip(kept, kept[1:]):
        outer.tb_next = inner
    if kept:
        kept[-1].tb_next = None
    return kept[0] if kept else None


def run(target, on_start):
    """Run *target* in this process; call ``on_start()`` just before its first line.

    Returns an :class:`Outcome`.  The caller exits with ``outcome.exit_code``.
    """
    outcome = Outcome()
    try:
        if target.script is not None:
            main = _prepare_script(target)
            if main is not None:
                with open(target.script, "rb") as handle:
                    source = handle.read()
                code = compile(source, main.__file__, "exec", dont_inherit=True)
                on_start()
                exec(code, main.__dict__)
            else:
                on_start()
                runpy._run_module_as_main("__main__", alter_argv=False)
        else:
            sys.argv[:] = ["-m", *target.args]
            sys.path[0] = os.getcwd()
            on_start()
            runpy._run_module_as_main(target.module, alter_argv=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            outcome.exit_code = 0
        elif isinstance(code, int):
            outcome.exit_code = code
            outcome.exc_message = str(code) if code else None
        else:
            try:
                print(code, file=sys.stderr)
            except Exception:
                pass
            outcome.exit_code = 1
            outcome.exc_message = str(code)
        outcome.exc_type = "SystemExit" if outcome.exit_code else None
    except BaseException as exc:
        tb = _strip_our_frames(exc.__traceback__)
        exc.__traceback__ = tb
        outcome.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
        outcome.exit_code = 130 if outcome.status == "interrupted" else 1
        outcome.exc_type = type(exc).__qualname__
        try:
            outcome.exc_message = str(exc)
        except Exception:
            outcome.exc_message = "<str failed>"
        outcome.traceback = "".join(traceback.format_exception(type(exc), exc, tb))
        try:
            sys.excepthook(type(exc), exc, tb)
        except Exception:
            sys.stderr.write(outcome.traceback)
    return outcome
