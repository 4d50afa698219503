"""The run database's tables (SQLAlchemy Core).  Bump SCHEMA_VERSION on any change.

Events are many and small, so they are not stored one row each: every batch a
tracer sends becomes one ``chunk`` row holding its events packed (msgpack,
compressed with Zstandard: see compression.py), with what navigation needs beside it: the sequence range,
the threads and code objects it touches, and each thread's call stack at its
start, so a reader can begin at any chunk.  ``docs/schema.rst`` shows how to
look inside with SQL and Python.
"""

from sqlalchemy import (Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData,
                        PrimaryKeyConstraint, String, Table, Text)

SCHEMA_VERSION = 3
APP_NAME = "smiley_like"

metadata = MetaData()

meta = Table(
    "meta", metadata,
    Column("key", String, primary_key=True, comment="'app' or 'schema_version'"),
    Column("value", String, nullable=False),
    comment="Marks the file as ours, with the schema version it holds.",
)

# One row per process: the program's own process is the run people see
# (root_id = id); every child process it started, however deep, is a row of
# its own with the same root_id, so its events, threads and code objects are
# keyed and numbered on their own, as its tracer numbered them.
run = Table(
    "run", metadata,
    Column("id", String(32), primary_key=True, comment="uuid4, 32 hex digits"),
    Column("root_id", String(32), nullable=False,
           comment="the run this process belongs to: its own id for the program's "
                   "first process"),
    Column("parent_id", String(32),
           comment="id of the row of the process that started this one; NULL for the first"),
    Column("command", Text, nullable=False, comment="the program's argv, as a JSON array"),
    Column("cwd", Text, comment="working directory of the traced program"),
    Column("started_at", Float, comment="seconds since the epoch"),
    Column("ended_at", Float, comment="seconds since the epoch; NULL while running"),
    Column("clock_ns", Integer, comment="perf_counter_ns() at started_at: events' t_ns origin"),
    Column("python", String, comment="Python version of the traced program"),
    Column("hostname", String),
    Column("pid", Integer, comment="process id of the traced program"),
    Column("status", String, nullable=False,
           comment="running | finished | error | interrupted | abrupt"),
    Column("exit_code", Integer),
    Column("exc_type", String, comment="uncaught exception's type, or SystemExit"),
    Column("exc_message", Text),
    Column("traceback", Text, comment="as printed to the program's stderr"),
    Column("event_count", Integer, nullable=False, default=0, comment="events stored"),
    Column("lost_events", Integer, nullable=False, default=0,
           comment="events the tracer could not deliver"),
    Column("batches", Integer, nullable=False, default=0, comment="event batches stored"),
    Column("notes", Text, comment="JSON array of remarks: displaced tracing, our own errors"),
    Column("options", Text, comment="recording options, as a JSON object"),
    Index("run_root", "root_id"),
)

source = Table(
    "source", metadata,
    Column("hash", String(40), primary_key=True, comment="sha1 of the file's bytes"),
    Column("text", Text, nullable=False, comment="decoded source text"),
    comment="Source files as they were when traced, stored once per content.",
)

file = Table(
    "file", metadata,
    Column("run_id", String(32), ForeignKey("run.id"), nullable=False),
    Column("file_no", Integer, nullable=False, comment="the file's number within the run"),
    Column("path", Text, nullable=False, comment="absolute path when traced"),
    Column("hash", String(40), comment="source.hash; NULL if unreadable"),
    PrimaryKeyConstraint("run_id", "file_no"),
)

code = Table(
    "code", metadata,
    Column("run_id", String(32), ForeignKey("run.id"), nullable=False),
    Column("code_id", Integer, nullable=False, comment="events' code id"),
    Column("file_no", Integer, nullable=False),
    Column("name", Text, nullable=False, comment="qualified name, e.g. Class.method"),
    Column("first_line", Integer, nullable=False),
    PrimaryKeyConstraint("run_id", "code_id"),
)

thread = Table(
    "thread", metadata,
    Column("run_id", String(32), ForeignKey("run.id"), nullable=False),
    Column("thread_no", Integer, nullable=False, comment="0 is the main thread"),
    Column("ident", Integer, comment="threading.get_ident()"),
    Column("native_id", Integer, comment="the OS thread id"),
    Column("name", Text),
    Column("event_count", Integer, nullable=False, default=0),
    Column("first_seq", Integer),
    Column("last_seq", Integer),
    Column("first_ns", Integer),
    Column("last_ns", Integer),
    Column("started_ns", Integer, comment="when the thread started (t_ns clock)"),
    Column("ended_ns", Integer, comment="when it ended; NULL if it outlived the recording"),
    PrimaryKeyConstraint("run_id", "thread_no"),
)

chunk = Table(
    "chunk", metadata,
    Column("run_id", String(32), ForeignKey("run.id"), nullable=False),
    Column("seq", Integer, nullable=False, comment="sequence number of the first event"),
    Column("count", Integer, nullable=False, comment="number of events"),
    Column("first_ns", Integer, comment="t_ns of the first event"),
    Column("last_ns", Integer, comment="t_ns of the last event"),
    Column("threads", Text, nullable=False, comment="JSON array of thread numbers present"),
    Column("codes", LargeBinary, nullable=False,
           comment="msgpack array of code ids with events here (calls, and frames on the "
                   "start stacks)"),
    Column("stacks", LargeBinary, nullable=False,
           comment="msgpack map thread_no -> [[call_id, code_id], ...] at the chunk's start"),
    Column("events", LargeBinary, nullable=False,
           comment="zstd(msgpack array of event tuples), as the tracer sent them "
                   "(zlib in databases first written with schema 2 or older)"),
    PrimaryKeyConstraint("run_id", "seq"),
)
