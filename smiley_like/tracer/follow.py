"""Following child processes: every Python process the program starts joins its run.

A forked child (``os.fork``, and ``multiprocessing``'s fork and forkserver
workers) already holds the tracer; :class:`~smiley_like.tracer.session.Recording`
turns it into a process of its own at the fork.  A new interpreter
(``multiprocessing``'s spawn, ``subprocess`` running Python) starts from
nothing, so the recording process leaves two things in its environment for
it, the way coverage.py's subprocess support does:

* ``SMILEY_LIKE_CHILD``, a JSON object saying where to send events, which run
  and parent process the child belongs to, and how to record;
* a directory first on ``PYTHONPATH`` holding a ``sitecustomize`` module,
  which Python imports at start-up.  It takes its directory off ``sys.path``
  again, imports the ``sitecustomize`` it shadows (if there is one), and
  calls :func:`bootstrap`.

An interpreter that ignores the environment (``-E``, ``-I``) or cannot import
smiley_like (another Python) runs untraced.
"""

import functools
import json
import os
import sys

from smiley_like.tracer import PACKAGE_DIR

CHILD_ENV = "SMILEY_LIKE_CHILD"
BOOT_DIR = os.path.join(PACKAGE_DIR, "tracer", "boot")
# multiprocessing's helper process: it never runs the program's code.
_HELPERS = ("from multiprocessing.resource_tracker import",)


def export(recording):
    """Tell the interpreters this process starts from now on how to join the run."""
    filter_options = {key: list(value) if isinstance(value, tuple) else value
                      for key, value in recording.filter_options.items()}
    settings = recording.settings
    config = {
        "endpoint": recording.endpoint,
        "remote": recording.remote,
        "database": recording.database,
        "writer_pid": recording.writer_pid,
        "root": recording.root_id,
        "parent": recording.run_id,
        "trace_locals": recording.trace_locals,
        "calls_only": recording.calls_only,
        "filter": filter_options,
        "settings": {"max_repr": settings.max_repr, "max_depth": settings.max_depth,
                     "repr_timeout": settings.repr_timeout,
                     "flush_timeout": settings.flush_timeout, "tracer": settings.tracer,
                     "hook": settings.hook},
    }
    os.environ[CHILD_ENV] = json.dumps(config)
    path = os.environ.get("PYTHONPATH", "")
    if BOOT_DIR not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = BOOT_DIR + (os.pathsep + path if path else "")


def bootstrap():
    """Record this interpreter as a child process of a run, if the environment says so."""
    text = os.environ.get(CHILD_ENV)
    if not text or _is_helper():
        return None
    try:
        config = json.loads(text)
        if _stale(config):
            # Left behind by a run that is over (a shell started from a recorded
            # program, say): run untraced, and do not pass it on.
            scrub(os.environ)
            return None
    except Exception:
        scrub(os.environ)
        return None
    from smiley_like import config as settings_module
    from smiley_like.tracer.session import Recording

    try:
        settings = settings_module.Settings(**config["settings"])
        recording = Recording.for_child(config, settings)
        recording.start_child()
    except Exception as exc:  # never stop the program from starting
        sys.stderr.write(f"smiley-like: this child process ({os.getpid()}) is not recorded: "
                         f"{type(exc).__name__}: {exc}\n")
        return None
    return recording


def scrub(environ):
    """*environ* without what :func:`export` put in it (for smiley-like's own processes)."""
    environ.pop(CHILD_ENV, None)
    entries = [entry for entry in environ.get("PYTHONPATH", "").split(os.pathsep)
               if entry != BOOT_DIR]
    if any(entries):
        environ["PYTHONPATH"] = os.pathsep.join(entries)
    else:
        environ.pop("PYTHONPATH", None)
    return environ


def _stale(config):
    """True if the run that left *config* behind can no longer take this process."""
    writer_pid = config.get("writer_pid")
    if writer_pid is not None:
        endpoint = config.get("endpoint") or ""
        socket_gone = endpoint.startswith("ipc://") and not os.path.exists(endpoint[6:])
        return socket_gone or process_gone(writer_pid)
    return False


def _is_helper():
    """True for processes that never run the program's code: multiprocessing's
    resource tracker, and smiley-like's own commands."""
    argv = list(getattr(sys, "orig_argv", []))[1:]
    while argv and argv[0].startswith("-") and argv[0] != "-":
        option = argv.pop(0)
        if option == "-c":
            return bool(argv) and argv[0].startswith(_HELPERS)
        if option == "-m":
            return bool(argv) and argv[0].split(".")[0] == "smiley_like"
        if option in ("-X", "-W") and argv:
            argv.pop(0)
    return bool(argv) and os.path.basename(argv[0]) == "smiley-like"


def outcome_at_exit(exit_args=None):
    """How a child interpreter is ending, as far as an atexit handler can tell.

    An uncaught exception has been printed (and left in ``sys.last_value``) by
    then.  *exit_args* are the arguments of a ``sys.exit()`` call seen on the
    way out (see :func:`watch_exit`); a ``raise SystemExit`` is not seen, and
    such an end has no exit code.
    """
    from smiley_like.tracer.runner import Outcome

    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if exc is None:
        if not exit_args:
            return Outcome(status="finished", exit_code=None)
        status = exit_args[0]
        code = 0 if status is None else status if isinstance(status, int) else 1
        return Outcome(status="finished" if code == 0 else "error", exit_code=code,
                       exc_type="SystemExit" if code else None,
                       exc_message=None if status is None else str(status))
    import traceback

    try:
        message = str(exc)
    except Exception:
        message = "<str failed>"
    interrupted = isinstance(exc, KeyboardInterrupt)
    return Outcome(status="interrupted" if interrupted else "error",
                   exit_code=130 if interrupted else 1, exc_type=type(exc).__qualname__,
                   exc_message=message,
                   traceback="".join(traceback.format_exception(type(exc), exc,
                                                                exc.__traceback__)))


def watch_exit(seen):
    """Note the arguments of ``sys.exit()`` in the list *seen*, then exit as asked.

    A child interpreter's exit status is not visible to an atexit handler;
    multiprocessing's spawned workers end with ``sys.exit(exitcode)``.
    """
    real_exit = sys.exit

    @functools.wraps(real_exit)
    def exit(*args):
        seen[:] = args[:1] or [None]
        return real_exit(*args)

    sys.exit = exit


def live_children():
    """Pids of this process's children that are still running (Linux; elsewhere none)."""
    me = os.getpid()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fields = _stat(entry)
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and int(fields[1]) == me and fields[0] not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def _stat(pid):
    """The fields of /proc/PID/stat after the command name (OSError if there is no such process)."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()


def process_start(pid):
    """When process *pid* started, in clock ticks since boot (Linux), or None."""
    try:
        return int(_stat(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def process_gone(pid, started=None):
    """True if process *pid* (on this host) has ended, even if nobody has reaped it yet.

    With *started* (from :func:`process_start`), a new process that reuses the
    pid does not count as the one we mean.
    """
    try:
        fields = _stat(pid)
        if fields[0] in (b"Z", b"X"):
            return True
        return started is not None and int(fields[19]) != started
    except FileNotFoundError:
        return True
    except (OSError, IndexError, ValueError):  # no /proc here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
