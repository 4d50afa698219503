"""Fixtures: run smiley-like for real (subprocesses, SQLite files) and read what it stored."""

import os
import subprocess
import sys
import textwrap

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

    def events(self, run="last"):
        """All events of a run, as (kind, function, line, value) tuples plus the raw records."""
        store = self.store()
        try:
            run_id = queries.resolve_run(store, run)
            return list(queries.events(store, run_id))
        finally:
            store.close()

    def flow(self, run="last", function=None):
        """(kind, function, line) of each event, optionally of one function only."""
        return [(KIND_NAMES[e.kind], e.code.name, e.line_no) for e in self.events(run)
                if function is None or e.code.name == function]


@pytest.fixture
def smiley(tmp_path):
    return Smiley(tmp_path)


def python(directory, *args, input=None, timeout=TIMEOUT):
    """Run plain python the way the user would, for comparisons."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, *args], cwd=directory, input=input,
                          capture_output=True, text=True, env=env, timeout=timeout)
