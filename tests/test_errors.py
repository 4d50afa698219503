"""A user's mistake gets one clear line on stderr and a non-zero exit, never a traceback."""

import contextlib
import sqlite3
import zlib

import pytest

from smiley_like.store import compression


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smiley-like: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_script(smiley):
    assert_one_line_error(smiley("run", "nope.py"), "nope.py", "no such file")


def test_missing_module(smiley):
    assert_one_line_error(smiley("run", "-m", "no_such_module_here"), "no_such_module_here")


def test_nothing_to_run(smiley):
    assert_one_line_error(smiley("run"), "nothing to run")


@pytest.mark.parametrize("command", ["list", "show", "replay", "delete"])
def test_missing_database(smiley, command):
    args = [command] if command == "list" else [command, "last"]
    assert_one_line_error(smiley(*args), "no run database", "runs.db")


def test_unknown_run_id(smiley):
    smiley.record("x = 1\n")
    assert_one_line_error(smiley("show", "deadbeef"), "no run 'deadbeef'")
    assert_one_line_error(smiley("replay", "not-hex"), "no run 'not-hex'")


def test_ambiguous_run_prefix(smiley):
    ids = set()
    while len(ids) < 2 or len({run_id[0] for run_id in ids}) == len(ids):
        smiley.record("x = 1\n")
        ids.add(smiley.last_run().id)
    first = sorted(ids)[0][0]
    duplicated = next(run_id[0] for run_id in ids
                      if sum(other[0] == run_id[0] for other in ids) > 1)
    assert first
    assert_one_line_error(smiley("show", duplicated), "ambiguous")


def test_database_of_another_application(smiley):
    with contextlib.closing(sqlite3.connect(smiley.database)) as conn, conn:
        conn.execute("create table accounts (id integer)")
    for args in (["list"], ["run", "prog.py"]):
        smiley.script("x = 1\n")
        assert_one_line_error(smiley(*args), "not a smiley-like database")


def test_database_that_is_a_text_file(smiley):
    (smiley.directory / "runs.db").write_text("hello, I am not a database\n" * 100)
    smiley.script("print('should not run')\n")
    assert_one_line_error(smiley("list"), "runs.db")
    result = smiley("run", "prog.py")
    assert_one_line_error(result, "runs.db")
    assert "should not run" not in result.stdout


def test_database_from_a_newer_version(smiley):
    smiley.record("x = 1\n")
    with contextlib.closing(sqlite3.connect(smiley.database)) as conn, conn:
        conn.execute("update meta set value = '99' where key = 'schema_version'")
    assert_one_line_error(smiley("list"), "schema version 99", "upgrade")
    smiley.script("print('should not run')\n")
    result = smiley("run", "prog.py")
    assert_one_line_error(result, "schema version 99")
    assert "should not run" not in result.stdout


def test_database_from_schema_1_is_upgraded_in_place(smiley):
    smiley.record("x = 1\n")
    run_id = smiley.last_run().id
    with contextlib.closing(sqlite3.connect(smiley.database)) as conn, conn:
        conn.execute("drop index run_root")
        conn.execute("alter table run drop column root_id")
        conn.execute("alter table run drop column parent_id")
        conn.execute("alter table thread drop column started_ns")
        conn.execute("alter table thread drop column ended_ns")
        conn.execute("update meta set value = '1' where key = 'schema_version'")
    listed = smiley("list", "-f", "value", "-c", "Run", "-c", "Processes", check=0)
    assert listed.stdout.split() == [run_id, "1"]
    with contextlib.closing(sqlite3.connect(smiley.database)) as conn:
        assert conn.execute("select value from meta where key = 'schema_version'").fetchone() \
            == ("3",)
        assert conn.execute("select root_id, parent_id from run").fetchall() == [(run_id, None)]
    smiley.record("y = 2\n")  # and it records into it again
    assert len(smiley("list", "-f", "value", "-c", "Run", check=0).stdout.split()) == 2


def test_database_from_schema_2_with_zlib_chunks_is_still_read(smiley):
    smiley.record("total = 0\nfor i in range(3):\n    total += i\nprint(total)\n")
    run_id = smiley.last_run().id
    replayed = smiley("replay", run_id).stdout
    with contextlib.closing(sqlite3.connect(smiley.database)) as conn, conn:
        for seq, blob in conn.execute("select seq, events from chunk").fetchall():
            conn.execute("update chunk set events = ? where seq = ?",
                         (zlib.compress(compression.decompress(blob)), seq))
        conn.execute("update meta set value = '2' where key = 'schema_version'")
    assert smiley("replay", run_id).stdout == replayed
    with contextlib.closing(sqlite3.connect(smiley.database)) as conn:
        assert conn.execute("select value from meta where key = 'schema_version'").fetchone() \
            == ("3",)
    smiley.record("y = 2\n")  # and it records into it again
    assert len(smiley("list", "-f", "value", "-c", "Run", check=0).stdout.split()) == 2


def test_database_in_a_missing_directory(smiley):
    smiley.script("x = 1\n")
    result = smiley("run", "--database", "no/such/dir/runs.db", "prog.py", database=False)
    assert_one_line_error(result, "no/such/dir/runs.db")


def test_database_not_writable(smiley, tmp_path):
    import os
    if os.geteuid() == 0:
        # root may write anywhere: make the database a read-only SQLite URL instead
        smiley.record("x = 1\n")
        url = f"sqlite:///file:{smiley.database}?mode=ro&uri=true"
        smiley.script("print('should not run')\n")
        result = smiley("run", "--database", url, "prog.py", database=False)
    else:
        directory = tmp_path / "ro"
        directory.mkdir()
        directory.chmod(0o500)
        smiley.script("print('should not run')\n")
        result = smiley("run", "--database", str(directory / "runs.db"), "prog.py",
                        database=False)
    assert_one_line_error(result, "readonly")
    assert "should not run" not in result.stdout


def test_locked_database(smiley):
    smiley.record("x = 1\n")
    lock = sqlite3.connect(smiley.database, timeout=0)
    lock.execute("begin exclusive")
    try:
        smiley.script("print('should not run')\n")
        result = smiley("run", "prog.py", env={"SMILEY_LIKE_BUSY_TIMEOUT": "0.2"})
        assert_one_line_error(result, "locked")
        assert "should not run" not in result.stdout
    finally:
        lock.rollback()
        lock.close()


def test_debug_shows_the_traceback(smiley):
    result = smiley("--debug", "list", "--database", smiley.database)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "smiley-like: no run database" in result.stderr


def test_database_from_the_environment(smiley):
    smiley.script("x = 1\n")
    env = {"SMILEY_LIKE_DATABASE": str(smiley.directory / "env.db")}
    result = smiley("run", "prog.py", database=False, env=env)
    assert result.returncode == 0
    assert (smiley.directory / "env.db").exists()
    listing = smiley("list", "-f", "value", "-c", "Events", database=False, env=env)
    assert listing.stdout.strip() == "3"


def test_database_setting_in_setup_cfg(smiley):
    smiley.script("x = 1\n")
    (smiley.directory / "setup.cfg").write_text("[smiley_like]\ndatabase = cfg.db\n")
    assert smiley("run", "prog.py", database=False).returncode == 0
    assert (smiley.directory / "cfg.db").exists()


def test_default_database_is_a_file_in_the_current_directory(smiley):
    smiley.script("x = 1\n")
    assert smiley("run", "prog.py", database=False).returncode == 0
    assert (smiley.directory / ".smiley_like.db").exists()


def test_bad_setting_in_the_environment(smiley):
    smiley.script("x = 1\n")
    result = smiley("run", "prog.py", env={"SMILEY_LIKE_MAX_REPR": "abc"})
    assert_one_line_error(result, "SMILEY_LIKE_MAX_REPR", "whole number", "'abc'")


def test_a_malformed_monitor_address_is_refused_before_the_program_runs(smiley):
    smiley.script('print("ran")\n')
    result = smiley("run", "--remote", "--socket", "bogus://", "prog.py", check=2)
    assert (result.stdout, result.stderr) == ("", "smiley-like: not a monitor address: "
                                              "'bogus://' (give tcp://HOST:PORT or ipc://PATH)\n")
    result = smiley("monitor", "--socket", "tcp://localhost", check=2)
    assert result.stderr.startswith("smiley-like: not a monitor address: 'tcp://localhost'")
