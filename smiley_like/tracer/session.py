"""One run being recorded: where events go, starting the tracer, and finishing cleanly.

Local mode (the default) starts a private writer process that binds an ipc
socket and stores into the database; ``remote`` sends to a running monitor
instead.  Either way the traced program never waits for SQLite.

The run is finished from an ``atexit`` handler registered before the program
starts, so it runs after the program's own atexit handlers and after its
non-daemon threads have ended, exactly when plain ``python`` would be done.
"""

import atexit
import contextlib
import functools
import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings

from smiley_like.errors import StoreError
from smiley_like.tracer import follow
from smiley_like.tracer.capture import Capture
from smiley_like.tracer.filters import FileFilter
from smiley_like.tracer.recorder import Recorder
from smiley_like.wire.publisher import Publisher


class Recording:
    """Records one process of a run: the program's first process, or a child of it.

    The first process (``smiley-like run``) starts the private writer in
    local mode; a child process (forked, or a new interpreter started by the
    program, see :mod:`smiley_like.tracer.follow`) sends to the same place
    as its parent, as a process of its own in the parent's run.
    """

    def __init__(self, target, *, database, settings, remote=None, trace_locals=True,
                 calls_only=False, follow_children=True,
                 filter_options=None, stderr=None):
        self.target = target
        self.database = database
        self.settings = settings
        self.remote = remote
        self.trace_locals = trace_locals
        self.calls_only = calls_only
        self.follow_children = follow_children
        self.filter_options = filter_options or {}
        self.stderr = stderr or sys.stderr
        self.run_id = uuid.uuid4().hex
        self.root_id = self.run_id  # the run the user sees
        self.parent_id = None  # the process that started this one
        self.child = None  # None for the first process; "fork" or "exec" for a child
        self.endpoint = None
        self.writer_pid = None  # the private writer (local mode)
        self.outcome = None
        self._writer = None
        self._early_lines = []  # what the writer said while we waited for something else
        self._tmpdir = None
        self._finished = False
        self._pid = os.getpid()
        self._real_exit = os._exit
        self._stored = None
        self._fork_mask = None
        self._fork_filter = None
        self._deferred_signal = None
        self._sigterm_hooked = False
        self._wakeup = None  # read end of the signal wakeup pipe (a child's SIGTERM)
        self._sigterm_at = None
        self._exit_args = []  # a child interpreter's sys.exit() argument, once called

    # -- before the program ------------------------------------------------

    def prepare(self):
        """Start the writer (local mode) and the publisher; raise SmileyError on bad input."""
        if self.remote:
            self.endpoint = self.remote
            peer_alive = wait_for_receiver = None
            patience = self.settings.flush_timeout  # for a monitor that is not there
        else:
            self.endpoint = self._start_writer()
            self.writer_pid = self._writer.pid
            peer_alive = lambda: self._writer.poll() is None  # noqa: E731
            wait_for_receiver = self._wait_for_stored
            patience = None  # our own writer: as long as it lives
        self._make_parts(patience=patience, peer_alive=peer_alive,
                         wait_for_receiver=wait_for_receiver)
        if self.remote:
            # A monitor that is there gets the start of the run before the program's
            # first line; one that is not costs a moment, not the whole patience.
            self.publisher.start(self._run_info(), wait=0.2)
        else:
            # Our own writer says when the run is stored: a program killed in its
            # first milliseconds still leaves its run behind.
            self.publisher.start(self._run_info())
            self._wait_for_line("started", timeout=5.0)
        self._hook_exits()

    def _make_parts(self, **publisher_options):
        self.capture = Capture(self.settings.max_repr, self.settings.max_depth,
                               self.settings.repr_timeout)
        self.publisher = Publisher(self.endpoint, self.run_id,
                                   on_tick=self._tick, **publisher_options)
        self.recorder = Recorder(FileFilter(**self.filter_options), self.capture,
                                 self.publisher, trace_locals=self.trace_locals,
                                 calls_only=self.calls_only,
                                 stderr=self.stderr, tracer=self.settings.tracer,
                                 hook=self.settings.hook)

    def _hook_exits(self):
        atexit.register(self.finish)
        os._exit = self._os_exit
        # exec replaces the process: its recording ends first (a Python program
        # exec'd joins the run again as a child, through the environment).
        os.execv = functools.partial(self._os_exec, _real_execv)
        os.execve = functools.partial(self._os_exec, _real_execve)
        os.register_at_fork(before=self._before_fork, after_in_parent=self._restore_mask,
                            after_in_child=self._after_fork_in_child)
        if self.follow_children:
            follow.export(self)

    # -- a child process -----------------------------------------------------

    @classmethod
    def for_child(cls, config, settings, stderr=None):
        """The recording of a new interpreter the program started (see :mod:`follow`)."""
        recording = cls(None, database=config.get("database"), settings=settings,
                        remote=config.get("remote"), trace_locals=config["trace_locals"],
                        calls_only=config["calls_only"],
                        filter_options={key: tuple(value) if isinstance(value, list) else value
                                        for key, value in config["filter"].items()},
                        stderr=stderr)
        recording.child = "exec"
        recording.root_id = config["root"]
        recording.parent_id = config["parent"]
        recording.endpoint = config["endpoint"]
        recording.writer_pid = config.get("writer_pid")
        return recording

    def start_child(self):
        """Start recording a child interpreter, from its first line of Python on."""
        self._make_parts(**self._child_publisher_options())
        self._terminate_cleanly()
        self.publisher.start(self._run_info(), wait=0.0)
        self._hook_exits()
        follow.watch_exit(self._exit_args)
        self.recorder.start()

    def _child_publisher_options(self):
        if self.writer_pid is not None:  # local mode: the private writer, while it lives
            writer_pid = self.writer_pid
            return dict(patience=None, peer_alive=lambda: not follow.process_gone(writer_pid),
                        wait_for_receiver=None)
        return dict(patience=self.settings.flush_timeout, peer_alive=None,
                    wait_for_receiver=None)

    def _before_fork(self):
        # SIGTERM waits until the child can send what it recorded before it dies
        # (Pool.terminate can come within the child's first milliseconds).
        self._fork_mask = None
        if self.follow_children and not self._finished:
            self._fork_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
        # Python 3.12+ warns about fork() in a process with threads; ours must not
        # make a single-threaded program see that warning.  (3.13 warns after the
        # after-fork hooks, so the filter stays until a fork that should warn.)
        if sys.version_info >= (3, 12):
            single = _only_thread_of_the_program()
            if single and self._fork_filter is None:
                warnings.filterwarnings(
                    "ignore", _FORK_WARNING % os.getpid(), DeprecationWarning)
                self._fork_filter = warnings.filters[0]
            elif not single and self._fork_filter is not None:
                with contextlib.suppress(ValueError):
                    warnings.filters.remove(self._fork_filter)
                warnings._filters_mutated()
                self._fork_filter = None

    def _restore_mask(self):
        if self._fork_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._fork_mask)

    def _after_fork_in_child(self):
        try:
            self._become_child()
        finally:
            self._restore_mask()  # the child's mask, as it was

    def _become_child(self):
        # The child must not hold the writer's stdin open: its end of file
        # is how the writer learns that we are gone.
        if self._writer is not None and self._writer.stdin is not None:
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._writer.stdin.fileno())
                os.close(devnull)
        self._writer = None
        self._tmpdir = None  # the parent's (or the writer's) to remove
        if self._finished:
            return
        self.capture.watchdog.after_fork()
        # subprocess forks to exec (with a preexec_fn, Python's fork hooks run):
        # nothing to record there, and no threads may be started.
        if not self.follow_children or _forking_to_exec():
            self._finished = True
            self.recorder.forked(follow=False)
            return
        try:
            self._follow_fork()
        except Exception as exc:  # ours: this child runs on, unrecorded
            self._finished = True
            self.recorder.forked(follow=False)
            self._say(f"this child process ({os.getpid()}) is not recorded: "
                      f"{type(exc).__name__}: {exc}")

    def _follow_fork(self):
        """The child goes on where the parent was, as a process of its own in the run."""
        if self._wakeup is not None:  # the parent's: this child gets its own
            with contextlib.suppress(ValueError, OSError):
                signal.set_wakeup_fd(-1)
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = self._sigterm_at = None
        self.parent_id, self.run_id = self.run_id, uuid.uuid4().hex
        self.child = "fork"
        self._pid = os.getpid()
        self._fork_filter = None  # the parent's: its pid is in it
        self._early_lines = []
        self._stored = None
        defs, events = self.recorder.forked(follow=True)
        self.publisher.restart_in_child(self.run_id, defs, **self._child_publisher_options())
        self.publisher.buffer.extend(events)
        self.publisher.start(self._run_info(), wait=0.0)
        follow.export(self)
        self._terminate_cleanly()

    def _terminate_cleanly(self):
        """A child stopped with SIGTERM (Pool.terminate) first sends what it recorded.

        Only where SIGTERM would kill the process anyway; the signal is then
        delivered again, unhandled, so the exit status is the same.
        """
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self.recorder.hide_signal_handler(signal.SIGTERM, self._on_sigterm)
            self._sigterm_hooked = True
            self._watch_signals()

    def _watch_signals(self):
        """Let the publisher thread see a SIGTERM whose handler cannot run.

        Python runs signal handlers in the main thread, between bytecodes: one
        busy in C code (a hash, a compression, a blocking call that is retried)
        would never get to ours, and the process could not be stopped.  The
        signal's number is also written to a wakeup file descriptor, which
        :meth:`_tick` reads; if the handler has not run shortly after, another
        thread finishes the recording and the process dies of the signal.  (Not
        when the program has a wakeup descriptor of its own: asyncio's loop
        runs handlers promptly anyway.)
        """
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        try:
            previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        except (ValueError, OSError):
            previous = None
        if previous != -1:
            if previous is not None:
                signal.set_wakeup_fd(previous)
            os.close(read_end)
            os.close(write_end)
            return
        self._wakeup = (read_end, write_end)

    def _tick(self):
        """The publisher thread's periodic call: the repr watchdog, and a stuck SIGTERM."""
        self.capture.watchdog.check()
        if self._wakeup is None or self._finished:
            return
        try:
            if signal.SIGTERM in os.read(self._wakeup[0], 512):
                self._sigterm_at = self._sigterm_at or time.monotonic()
        except OSError:  # nothing there (BlockingIOError), or closed
            pass
        if self._sigterm_at and time.monotonic() - self._sigterm_at > SIGNAL_PATIENCE:
            self._wakeup = None
            thread = threading.Thread(target=self._terminate_from_thread,
                                      name="smiley-like-terminate", daemon=True)
            thread.smiley_like_own = True
            thread.start()

    def _terminate_from_thread(self):
        try:
            self.finish(killed_by=signal.SIGTERM)
        finally:
            _default_action(signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)

    def _on_sigterm(self, signum, frame):
        if self._finished:  # finishing already: the signal's turn comes when that is done
            self._deferred_signal = signum
            return
        try:
            self.finish(killed_by=signum)
        finally:
            self._die_of(signum)

    @staticmethod
    def _die_of(signum):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _run_info(self):
        if self.target is not None:  # the program's first process, or a fork of it
            argv = self.target.argv
        else:  # a new interpreter: its whole command line says what it is
            argv = list(getattr(sys, "orig_argv", sys.argv))
        return {
            "argv": argv,
            "cwd": os.getcwd(),
            "started_at": time.time(),
            "clock_ns": time.perf_counter_ns(),
            "python": platform.python_version(),
            "hostname": socket.gethostname(),
            "root": self.root_id,
            "parent": self.parent_id,
            "process_start": follow.process_start(os.getpid()),  # tells a reused pid apart
            "options": {"trace_locals": self.trace_locals,
                        "tracer": self.recorder.tracer,
                        "hook": self.recorder.hook,
                        "calls_only": self.calls_only,
                        "max_repr": self.settings.max_repr,
                        "max_depth": self.settings.max_depth,
                        "follow_children": self.follow_children,
                        **({"child": self.child} if self.child else {}),
                        **{key: list(value) if isinstance(value, tuple) else value
                           for key, value in self.filter_options.items()}},
        }

    def _start_writer(self):
        self._tmpdir = tempfile.mkdtemp(prefix="smiley-like-")
        endpoint = f"ipc://{self._tmpdir}/writer.sock"
        if len(endpoint) > 100:  # ipc paths are limited to ~107 bytes
            endpoint = "tcp://127.0.0.1:*"
        command = [sys.executable, "-P", "-m", "smiley_like.monitor", "--private",
                   "--database", self.database, "--socket", endpoint,
                   "--run", self.run_id]
        # A session of its own: Ctrl-C in the terminal is for the traced program.
        # Its stdin is a pipe from us: end of file tells it we are gone.
        self._writer = subprocess.Popen(command, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, start_new_session=True,
                                        text=True, env=follow.scrub(dict(os.environ)))
        line = self._writer.stdout.readline().strip()
        if line.startswith("ready "):
            return line[len("ready "):]
        self._writer.wait()
        self._cleanup()
        if line.startswith("error "):
            raise StoreError(line[len("error "):])
        raise StoreError(f"the writer process for '{self.database}' failed to start "
                         f"(exit status {self._writer.returncode})")

    def start_tracing(self):
        """Called by the runner just before the program's first line."""
        self.recorder.start()

    # -- after the program -------------------------------------------------

    def _os_exec(self, real_exec, path, *args, **kwargs):
        if os.getpid() == self._pid and not self._finished:
            self.finish(exec_of=os.fsdecode(path))
        return real_exec(path, *args, **kwargs)

    def _os_exit(self, status):
        if os.getpid() == self._pid:
            caller = sys._getframe(1).f_code.co_filename
            # multiprocessing ends its forked children with os._exit: that is their
            # normal end, with the exit code of the process object.
            normal = self.child == "fork" and os.path.basename(os.path.dirname(caller)) \
                == "multiprocessing"
            self.finish(exit_status=status, abrupt=not normal)
        self._real_exit(status)

    def finish(self, exit_status=None, abrupt=True, killed_by=None, exec_of=None):
        """Stop tracing, deliver what is left, wait for the writer; report what was lost."""
        if self._finished or os.getpid() != self._pid:
            return
        self._finished = True
        try:
            self._finish(exit_status, abrupt, killed_by, exec_of)
        except Exception as exc:  # ours: the program's exit must not notice
            self._say(f"internal error while finishing the recording: "
                      f"{type(exc).__name__}: {exc}")

    def _finish(self, exit_status, abrupt, killed_by, exec_of):
        self.recorder.stop()
        os._exit = self._real_exit
        end = self._end_info(exit_status, abrupt, killed_by, exec_of)
        # The first process in local mode waits as long as the writer lives: it is
        # our own process.  Anything else waits at most the flush timeout.
        local_parent = self._writer is not None
        timeout = self.settings.flush_timeout
        if self.child is not None and not self.publisher.ever_connected:
            timeout = min(timeout, 0.5)  # the program's first process says it (or waited)
        self.publisher.close(end, None if local_parent else timeout)
        lost = self.publisher.lost
        problem = None
        if self.publisher.error is not None:
            problem = f"could not send events: {self.publisher.error}"
        if local_parent:
            stored = self._wait_for_writer()
            if stored is None:
                problem = problem or "the writer process failed; see its message above"
                lost = max(lost, self.publisher.sent)
            else:
                lost += max(0, self.publisher.sent - stored)
        if problem:
            self._say(problem)
        if self.remote and not self.publisher.ever_connected and self.child is None:
            self._say(f"no monitor was listening at {self.remote}: this {self._what()} was not "
                      f"recorded ({lost} events; start one with 'smiley-like monitor')")
        elif lost:
            where = f"the monitor at {self.remote}" if self.remote else f"'{self.database}'"
            self._say(f"{lost} events {self._of_what()}were not recorded in {where}")
        if self.publisher.cut_short:
            self._say(f"the monitor at {self.remote} was still taking the last events when "
                      f"the flush timeout ran out: up to {self.publisher.cut_short} of them "
                      "may be missing")
        self._cleanup()
        if self._deferred_signal is not None:
            self._die_of(self._deferred_signal)
        if self._sigterm_hooked:
            self._sigterm_hooked = False
            try:
                if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
            except ValueError:  # not the main thread
                pass

    def _what(self):
        return "run" if self.child is None else f"child process {os.getpid()}"

    def _of_what(self):
        return "" if self.child is None else f"of child process {os.getpid()} "

    def _end_info(self, exit_status, abrupt, killed_by, exec_of):
        notes = list(self.recorder.notes)
        info = self._end_status(notes, exit_status, abrupt, killed_by, exec_of)
        # Child processes that may not have said so yet: the writer waits for them.
        info["expect"] = [pid for pid in follow.live_children() if pid != self.writer_pid] \
            + ([os.getpid()] if exec_of else [])
        return info

    def _end_status(self, notes, exit_status, abrupt, killed_by, exec_of):
        ended_at = time.time()
        if exec_of is not None:
            notes.append(f"the process replaced itself: exec {exec_of}")
            return {"status": "finished", "ended_at": ended_at, "notes": notes}
        if killed_by is not None:
            notes.append(f"the process was stopped by signal {signal.Signals(killed_by).name}")
            return {"status": "abrupt", "exit_code": -killed_by, "ended_at": ended_at,
                    "notes": notes}
        if exit_status is not None:
            if not abrupt:
                return {"status": "finished" if exit_status == 0 else "error",
                        "exit_code": exit_status, "ended_at": ended_at, "notes": notes}
            notes.append(f"the program called os._exit({exit_status})")
            return {"status": "abrupt", "exit_code": exit_status, "ended_at": ended_at,
                    "notes": notes}
        outcome = self.outcome
        if outcome is None and self.child == "exec":
            outcome = follow.outcome_at_exit(self._exit_args)
        if outcome is None:
            return {"status": "abrupt", "ended_at": ended_at, "notes": notes}
        return {"status": outcome.status, "exit_code": outcome.exit_code,
                "exc_type": outcome.exc_type, "exc_message": outcome.exc_message,
                "traceback": outcome.traceback, "ended_at": ended_at, "notes": notes}

    def _wait_for_line(self, expected, timeout):
        """Read the writer's next line if it comes within *timeout* seconds (else go on)."""
        ready, _, _ = select.select([self._writer.stdout], [], [], timeout)
        if ready:
            line = self._writer.stdout.readline().strip()
            if line != expected:
                self._early_lines.append(line)

    def _wait_for_stored(self):
        """The publisher's last wait (local mode): until the writer has stored our end.

        The writer says ``stored N`` then, and may go on storing child processes
        that outlive us; we do not wait for those.
        """
        for line in self._writer.stdout:
            line = line.strip()
            if line.startswith("stored "):
                self._stored = int(line.split()[1])
                return
            self._early_lines.append(line)
        self._writer.wait()  # end of output: the writer has exited

    def _wait_for_writer(self):
        """The events the writer stored of this process, or None if it failed."""
        self._writer.stdin.close()  # if the end message never came, the writer stops now
        if self._stored is None:
            self._wait_for_stored()
        for line in self._early_lines:
            if line.startswith("stored "):
                self._stored = int(line.split()[1])
        return self._stored

    def _cleanup(self):
        # The writer removes its socket directory when it exits: child processes may
        # still be sending to it after we are gone.
        if self._tmpdir and (self._writer is None or self._writer.poll() is not None):
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = None

    def _say(self, text):
        try:
            self.stderr.write(f"smiley-like: {text}\n")
            self.stderr.flush()
        except Exception:
            pass


#: Seconds a SIGTERM may wait for its handler before another thread acts on it.
SIGNAL_PATIENCE = 0.25

_real_execv = os.execv
_real_execve = os.execve


def _forking_to_exec():
    """True in a child that subprocess forked to exec a program."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_execute_child" and code.co_filename.endswith("subprocess.py"):
            return True
        frame = frame.f_back
    return False


# What Python 3.12+ says when a process with threads forks.
_FORK_WARNING = r"This process \(pid=%d\) is multi-threaded, use of \w+\(\) may lead to deadlocks"


def _only_thread_of_the_program():
    """True if the program has one thread: the others, if any, are ours."""
    return sum(1 for thread in threading.enumerate()
               if not getattr(thread, "smiley_like_own", False)) <= 1


def _default_action(signum):
    """Put *signum*'s default action back, from any thread (signal.signal is main-thread only)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.signal(int(signum), None)  # SIG_DFL is 0
