"""Fixtures: run smiley-like for real (subprocesses, SQLite files) and read what it stored."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from smiley_like.events import KIND_NAMES
from smiley_like.store import queries
from smiley_like.store.engine import open_store

TIMEOUT = 120


class Smiley:
    """Runs ``python -m smiley_like`` in a directory with its own database."""

    def __init__(self, directory):
        self.directory = directory
        self.database = str(directory / "runs.db")

    def env(self, **extra):
        env = dict(os.environ)
        env.pop("SMILEY_LIKE_DATABASE", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra)
        return env

    def __call__(self, *args, database=True, input=None, env=None, check=None, timeout=TIMEOUT):
        """Run one command; ``check`` is the exit status we expect, if any."""
        command = [sys.executable, "-m", "smiley_like", *args]
        if database and args and args[0] not in ("--debug", "help"):
            command[3:4] = [args[0], "--database", self.database]
        result = subprocess.run(command, cwd=self.directory, input=input, capture_output=True,
                                text=True, env=self.env(**(env or {})), timeout=timeout)
        if check is not None:
            assert result.returncode == check, (result.returncode, result.stdout, result.stderr)
        return result

    def script(self, source, name="prog.py"):
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def record(self, source, *args, name="prog.py", options=(), check=0):
        """Write *source* to a script, run it traced, and return the result."""
        self.script(source, name)
        return self("run", *options, name, *args, check=check)

    def store(self):
        return open_store(self.database)

    def last_run(self):
        store = self.store()
        try:
            return queries.run(store, queries.resolve_run(store, "last"))
        finally:
            store.close()

    def events(self, run="last", function=None):
        """All events of a run, or of one function only (the chunks without it are
        not decoded: a run of millions of events is read in a moment)."""
        store = self.store()
        try:
            run_id = queries.resolve_run(store, run)
            code_map = queries.codes(store, run_id)
            if function is None:
                return list(queries.events(store, run_id, code_map=code_map))
            ids = {code_id for code_id, code in code_map.items() if code.name == function}
            return [event for event in queries.events(store, run_id, code_ids=ids,
                                                      code_map=code_map)
                    if event.code.name == function]
        finally:
            store.close()

    def flow(self, run="last", function=None):
        """(kind, function, line) of each event, optionally of one function only."""
        return [(KIND_NAMES[e.kind], e.code.name, e.line_no) for e in self.events(run)
                if function is None or e.code.name == function]


@pytest.fixture
def smiley(tmp_path):
    return Smiley(tmp_path)


def free_endpoint():
    """A tcp endpoint on the loopback that nothing listens on (for now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


class MonitorProcess:
    """``smiley-like monitor`` in a subprocess, its output going to files."""

    def __init__(self, smiley, endpoint, *options, env=None):
        self.smiley = smiley
        self.endpoint = endpoint
        self.options = options
        self.env = env or {}
        self.process = None
        self.started = 0

    def start(self, wait=True):
        self.started += 1
        directory = self.smiley.directory
        self.out_path = directory / f"monitor{self.started}.out"
        self.err_path = directory / f"monitor{self.started}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "smiley_like", "monitor", "--database",
                 self.smiley.database, "--socket", self.endpoint, *self.options],
                cwd=directory, stdout=out, stderr=err, env=self.smiley.env(**self.env))
        if wait:
            self.wait_for(lambda: "listening" in self.err, "the monitor to listen")
        return self

    @property
    def out(self):
        return self.out_path.read_text()

    @property
    def err(self):
        return self.err_path.read_text()

    def wait_for(self, condition, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None and not condition():
                raise AssertionError(f"monitor exited ({self.process.returncode}) while "
                                     f"waiting for {what}: {self.err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.err}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGINT, timeout=60):
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self):
        self.process.kill()
        self.process.wait(30)


@pytest.fixture
def monitor(smiley):
    """Make a monitor (not started) on a fresh endpoint; every one is stopped at the end."""
    made = []

    def make(*options, endpoint=None, env=None):
        made.append(MonitorProcess(smiley, endpoint or free_endpoint(), *options, env=env))
        return made[-1]

    yield make
    for process in made:
        if process.process is not None and process.process.poll() is None:
            process.kill()


def python(directory, *args, input=None, timeout=TIMEOUT):
    """Run plain python the way the user would, for comparisons."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, *args], cwd=directory, input=input,
                          capture_output=True, text=True, env=env, timeout=timeout)
