"""Opening a run database: URL, pragmas, schema checks, and driver errors turned into ours."""

import contextlib
import logging
import os

import sqlalchemy
from sqlalchemy import event, exc, select

from smiley_like.errors import StoreBusy, StoreError
from smiley_like.store import schema

LOG = logging.getLogger(__name__)


def database_url(location):
    """A path or an SQLAlchemy URL -> URL object."""
    if "://" in location:
        try:
            return sqlalchemy.engine.make_url(location)
        except exc.ArgumentError as error:
            raise StoreError(f"not a database path or URL: '{location}'") from error
    return sqlalchemy.engine.URL.create("sqlite", database=location)


def _pragmas(busy_timeout):
    def set_pragmas(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        # Per connection.  journal_mode=WAL is set once, when the schema is
        # created: it is persistent, and a file that is not ours must not change.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
    return set_pragmas


class Store:
    """An open run database; ``name`` is how error messages refer to it."""

    def __init__(self, engine, name):
        self.engine = engine
        self.name = name

    @contextlib.contextmanager
    def errors(self):
        """Turn driver errors inside the block into StoreError naming the database."""
        try:
            yield
        except exc.DBAPIError as error:
            reason = str(error.orig) if error.orig is not None else str(error)
            busy = isinstance(error, exc.OperationalError) and "locked" in reason
            raise (StoreBusy if busy else StoreError)(
                f"cannot use run database '{self.name}': {reason}") from error

    @contextlib.contextmanager
    def begin(self):
        """A transaction, with driver errors translated."""
        with self.errors(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def connect(self):
        with self.errors(), self.engine.connect() as conn:
            yield conn

    def check_writable(self):
        """Take the write lock once, so that a read-only or locked file is reported now."""
        with self.begin() as conn:
            conn.execute(schema.meta.update().where(schema.meta.c.key == "app")
                         .values(value=schema.APP_NAME))

    def close(self):
        self.engine.dispose()


def open_store(location, create=False, busy_timeout=10.0):
    """Open the run database at *location* (a path or URL); create it if *create*.

    *busy_timeout* is how many seconds to wait for a database another process
    has locked before reporting it.
    """
    url = database_url(location)
    name = location
    plain_file = url.get_backend_name() == "sqlite" and not url.query.get("uri") \
        and url.database not in (None, "", ":memory:")
    if plain_file:
        path = url.database
        if not create and not os.path.exists(path):
            raise StoreError(f"no run database at '{name}' (record one with "
                             "'smiley-like run SCRIPT')")
        if os.path.isdir(path):
            raise StoreError(f"cannot use run database '{name}': it is a directory")
        directory = os.path.dirname(os.path.abspath(path))
        if create and not os.path.isdir(directory):
            raise StoreError(f"cannot create run database '{name}': no directory "
                             f"'{directory}'")
    if url.get_backend_name() != "sqlite":
        raise StoreError(f"cannot use run database '{name}': only SQLite is supported")
    try:
        engine = sqlalchemy.create_engine(url)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise StoreError(f"cannot use run database '{name}': {error}") from error
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _pragmas(busy_timeout))
    store = Store(engine, name)
    try:
        _check_schema(store, create)
    except BaseException:
        engine.dispose()
        raise
    return store


def _check_schema(store, create):
    with store.begin() as conn:
        tables = set(sqlalchemy.inspect(conn).get_table_names())
        if not tables:
            if not create:
                raise StoreError(f"'{store.name}' holds no smiley-like runs")
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # readers while a writer writes
            schema.metadata.create_all(conn)
            conn.execute(schema.meta.insert(), [
                {"key": "app", "value": schema.APP_NAME},
                {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
            ])
            return
        if "meta" not in tables:
            raise StoreError(f"'{store.name}' is not a smiley-like database")
        values = dict(conn.execute(select(schema.meta.c.key, schema.meta.c.value)).all())
        if values.get("app") != schema.APP_NAME:
            raise StoreError(f"'{store.name}' is not a smiley-like database")
        try:
            version = int(values.get("schema_version", ""))
        except ValueError:
            raise StoreError(f"'{store.name}' has an unreadable schema version") from None
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"'{store.name}' has schema version {version}, newer than the version "
                f"{schema.SCHEMA_VERSION} this smiley-like reads: upgrade smiley-like")
        if version < 1:
            raise StoreError(
                f"'{store.name}' has schema version {version}, older than the version "
                f"{schema.SCHEMA_VERSION} this smiley-like reads, and there is no "
                "migration for it")
        for step in _MIGRATIONS[version - 1:]:
            step(conn)
        if version < schema.SCHEMA_VERSION:
            conn.execute(schema.meta.update().where(schema.meta.c.key == "schema_version")
                         .values(value=str(schema.SCHEMA_VERSION)))


def _migrate_from_1(conn):
    """Schema 1 had one process per run (every run is its own root), and no thread times."""
    conn.exec_driver_sql("ALTER TABLE run ADD COLUMN root_id VARCHAR(32)")
    conn.exec_driver_sql("ALTER TABLE run ADD COLUMN parent_id VARCHAR(32)")
    conn.exec_driver_sql("UPDATE run SET root_id = id")
    conn.exec_driver_sql("CREATE INDEX run_root ON run (root_id)")
    conn.exec_driver_sql("ALTER TABLE thread ADD COLUMN started_ns INTEGER")
    conn.exec_driver_sql("ALTER TABLE thread ADD COLUMN ended_ns INTEGER")


def _migrate_from_2(conn):
    """Schema 2 compressed chunks with zlib: they stay, and are read as they are."""


# _MIGRATIONS[n - 1] upgrades schema n to n + 1.
_MIGRATIONS = (_migrate_from_1, _migrate_from_2)
assert len(_MIGRATIONS) == schema.SCHEMA_VERSION - 1
