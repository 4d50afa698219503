"""One run being recorded: where events go, starting the tracer, and finishing cleanly.

Local mode (the default) starts a private writer process that binds an ipc
socket and stores into the database; ``remote`` sends to a running monitor
instead.  Either way the traced program never waits for SQLite.

The run is finished from an ``atexit`` handler registered before the program
starts, so it runs after the program's own atexit handlers and after its
non-daemon threads have ended, exactly when plain ``python`` would be done.
"""

import atexit
import os
import platform
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from smiley_like.errors import StoreError
from smiley_like.tracer.capture import Capture
from smiley_like.tracer.filters import FileFilter
from smiley_like.tracer.recorder import Recorder
from smiley_like.wire.publisher import Publisher


class Recording:
    """Records one run of a program in this process."""

    def __init__(self, target, *, database, settings, remote=None, trace_locals=True,
                 calls_only=False,
                 filter_options=None, stderr=None):
        self.target = target
        self.database = database
        self.settings = settings
        self.remote = remote
        self.trace_locals = trace_locals
        self.calls_only = calls_only
        self.filter_options = filter_options or {}
        self.stderr = stderr or sys.stderr
        self.run_id = uuid.uuid4().hex
        self.outcome = None
        self._writer = None
        self._early_lines = []  # what the writer said while we waited for something else
        self._tmpdir = None
        self._finished = False
        self._pid = os.getpid()
        self._real_exit = os._exit

    # -- before the program ------------------------------------------------

    def prepare(self):
        """Start the writer (local mode) and the publisher; raise SmileyError on bad input."""
        if self.remote:
            endpoint = self.remote
            peer_alive = wait_for_receiver = None
            patience = self.settings.flush_timeout  # for a monitor that is not there
        else:
            endpoint = self._start_writer()
            peer_alive = lambda: self._writer.poll() is None  # noqa: E731
            wait_for_receiver = self._writer.wait
            patience = None  # our own writer: as long as it lives
        self.capture = Capture(self.settings.max_repr, self.settings.max_depth,
                               self.settings.repr_timeout)
        self.publisher = Publisher(endpoint, self.run_id, patience=patience,
                                   peer_alive=peer_alive,
                                   on_tick=self.capture.watchdog.check,
                                   wait_for_receiver=wait_for_receiver)
        self.recorder = Recorder(FileFilter(**self.filter_options), self.capture,
                                 self.publisher, trace_locals=self.trace_locals,
                                 calls_only=self.calls_only,
                                 stderr=self.stderr, tracer=self.settings.tracer)
        if self.remote:
            # A monitor that is there gets the start of the run before the program's
            # first line; one that is not costs a moment, not the whole patience.
            self.publisher.start(self._run_info(), wait=0.2)
        else:
            # Our own writer says when the run is stored: a program killed in its
            # first milliseconds still leaves its run behind.
            self.publisher.start(self._run_info())
            self._wait_for_line("started", timeout=5.0)
        atexit.register(self.finish)
        os._exit = self._os_exit
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _run_info(self):
        return {
            "argv": self.target.argv,
            "cwd": os.getcwd(),
            "started_at": time.time(),
            "clock_ns": time.perf_counter_ns(),
            "python": platform.python_version(),
            "hostname": socket.gethostname(),
            "options": {"trace_locals": self.trace_locals,
                        "tracer": self.recorder.tracer,
                        "calls_only": self.calls_only,
                        "max_repr": self.settings.max_repr,
                        "max_depth": self.settings.max_depth,
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
                                        text=True)
        line = self._writer.stdout.readline().strip()
        if line.startswith("ready "):
            return line[len("ready "):]
        self._writer.wait()
        self._cleanup()
        if line.startswith("error "):
            raise StoreError(line[len("error "):])
        raise StoreError(f"the writer process for '{self.database}' failed to start "
                         f"(exit status {self._writer.returncode})")

    def _after_fork_in_child(self):
        # The child must not hold the writer's stdin open: its end of file
        # is how the writer learns that we are gone.
        if self._writer is not None and self._writer.stdin is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._writer.stdin.fileno())
            os.close(devnull)

    def start_tracing(self):
        """Called by the runner just before the program's first line."""
        self.recorder.start()

    # -- after the program -------------------------------------------------

    def _os_exit(self, status):
        if os.getpid() == self._pid:
            self.finish(abrupt_status=status)
        self._real_exit(status)

    def finish(self, abrupt_status=None):
        """Stop tracing, deliver what is left, wait for the writer; report what was lost."""
        if self._finished or os.getpid() != self._pid:
            return
        self._finished = True
        self.recorder.stop()
        os._exit = self._real_exit
        end = self._end_info(abrupt_status)
        # Local mode waits as long as the writer lives: it is our own process.
        self.publisher.close(end, self.settings.flush_timeout if self.remote else None)
        lost = self.publisher.lost
        problem = None
        if self.publisher.error is not None:
            problem = f"could not send events: {self.publisher.error}"
        if self._writer is not None:
            stored = self._wait_for_writer()
            if stored is None:
                problem = problem or "the writer process failed; see its message above"
                lost = max(lost, self.publisher.sent)
            else:
                lost += max(0, self.publisher.sent - stored)
        if problem:
            self._say(problem)
        if self.remote and not self.publisher.ever_connected:
            self._say(f"no monitor was listening at {self.remote}: this run was not recorded "
                      f"({lost} events; start one with 'smiley-like monitor')")
        elif lost:
            where = f"the monitor at {self.remote}" if self.remote else f"'{self.database}'"
            self._say(f"{lost} events were not recorded in {where}")
        if self.publisher.cut_short:
            self._say(f"the monitor at {self.remote} was still taking the last events when "
                      f"the flush timeout ran out: up to {self.publisher.cut_short} of them "
                      "may be missing")
        self._cleanup()

    def _end_info(self, abrupt_status):
        notes = list(self.recorder.notes)
        if abrupt_status is not None:
            notes.append(f"the program called os._exit({abrupt_status})")
            return {"status": "abrupt", "exit_code": abrupt_status, "ended_at": time.time(),
                    "notes": notes}
        outcome = self.outcome
        if outcome is None:
            return {"status": "abrupt", "ended_at": time.time(), "notes": notes}
        return {"status": outcome.status, "exit_code": outcome.exit_code,
                "exc_type": outcome.exc_type, "exc_message": outcome.exc_message,
                "traceback": outcome.traceback, "ended_at": time.time(), "notes": notes}

    def _wait_for_line(self, expected, timeout):
        """Read the writer's next line if it comes within *timeout* seconds (else go on)."""
        ready, _, _ = select.select([self._writer.stdout], [], [], timeout)
        if ready:
            line = self._writer.stdout.readline().strip()
            if line != expected:
                self._early_lines.append(line)

    def _wait_for_writer(self):
        """Wait for the writer to store everything; return the events it stored, or None."""
        self._writer.stdin.close()  # if the end message never came, the writer stops now
        output = self._writer.stdout.read()
        self._writer.wait()
        for line in self._early_lines + output.splitlines():
            if line.startswith("stored "):
                return int(line.split()[1])
        return None

    def _cleanup(self):
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _say(self, text):
        try:
            self.stderr.write(f"smiley-like: {text}\n")
            self.stderr.flush()
        except Exception:
            pass
