"""One SQLAlchemy engine per process, shared by the web app and the worker.

On SQLite one writer at a time holds the database's write lock, from a transaction's first
write to its commit. A writer that finds it taken waits in SQLite's busy handler, which
sleeps longer and longer between tries, so behind two busy workers a webhook keeps missing
the moments the lock is free. Instead every process tries again at a steady interval, the
processes that answer callers (the web app, the operator commands) more often than the
workers, so a webhook takes the lock between two worker transactions and a worker never
sleeps through free moments either. BENCHMARKS.md measures the effect."""
from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 5000  # wait this long for another writer instead of failing
WEB_WRITE_POLL_SECONDS = 0.0005  # how often a process answering callers tries again for the write lock
WORKER_WRITE_POLL_SECONDS = 0.002  # how often a worker does: less often, so the web comes first
# For an UPDATE by primary key or state (a compare-and-set) in a unit of work that holds no
# loaded copy of those rows: SQLAlchemy need not search its identity map for copies to refresh,
# a measurable share of a short job. `session.execute(stmt, execution_options=UNSYNCED)`.
UNSYNCED = {"synchronize_session": False}
# A server connection back from the pool is tested (one round trip) only when it sat unused this
# long: one used a moment ago is very likely alive, and a unit of work that finds it dead anyway
# fails like any other database error (the report filing tries once more on a new connection).
IDLE_PING_SECONDS = 5.0

# session.info key: callables that write what a unit of work kept back, run just before it commits
BEFORE_COMMIT = "before_commit"


def _before_commit(session: Session) -> None:
    for write in session.info.pop(BEFORE_COMMIT, ()):
        write()


def _sqlite_setup(write_poll_seconds: float):
    def on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")   # readers do not block the one writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes under WAL
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=0")  # a locked write returns at once: _PollingCursor waits
        cursor.close()
        dbapi_connection.write_poll_seconds = write_poll_seconds
    return on_connect


def _outside_transaction_retried(connection: "_PollingConnection", run):
    """`run()` a statement; if it found the database locked and it was not inside a
    transaction, try it again every `write_poll_seconds` until SQLITE_BUSY_TIMEOUT_MS. Only a
    statement that would begin the transaction (the driver begins one at the first write) can
    find the lock taken: nothing of the transaction has run, so trying it again is safe."""
    if connection.in_transaction:
        return run()
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return run()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            if connection.in_transaction:  # the driver's BEGIN before the refused write
                connection.rollback()
            time.sleep(connection.write_poll_seconds)


class _PollingCursor(sqlite3.Cursor):
    def execute(self, sql, parameters=()):
        return _outside_transaction_retried(self.connection, lambda: sqlite3.Cursor.execute(self, sql, parameters))

    def executemany(self, sql, seq_of_parameters):
        rows = list(seq_of_parameters)  # an iterator could not be run twice
        return _outside_transaction_retried(self.connection, lambda: sqlite3.Cursor.executemany(self, sql, rows))


class _PollingConnection(sqlite3.Connection):
    """A connection whose first write waits for the lock by polling (its busy timeout is 0)."""

    write_poll_seconds = WEB_WRITE_POLL_SECONDS

    def cursor(self, factory=_PollingCursor):
        return super().cursor(factory)


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600), or take an existing one
    back to that: it holds encrypted personal data, and the key often sits in the same directory.
    SQLite gives its -wal and -shm files the database file's mode. Nothing for a server database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if path.exists():
        for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if part.is_file() and (mode := stat.S_IMODE(part.stat().st_mode)) & 0o077:
                part.chmod(mode & 0o700)
                logging.getLogger(__name__).warning("%s was readable by others (%o): now owner only", part.name, mode)
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # another process made it first, the same way
        pass


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`, but only for a connection idle IDLE_PING_SECONDS or more: under load
    every unit of work would otherwise pay a round trip for a connection used a moment ago.
    A failed ping has the pool replace the connection before anyone uses it."""
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(type(exc).__name__) from exc


class Database:
    def __init__(self, url: str, write_poll_seconds: float = WEB_WRITE_POLL_SECONDS):
        self.url = make_url(url)
        private_sqlite_file(url)
        sqlite = self.url.get_backend_name() == "sqlite"
        self.engine: Engine = create_engine(url, connect_args={"factory": _PollingConnection} if sqlite else {})
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_setup(write_poll_seconds))
        else:  # a server connection can go stale (PostgreSQL restarted); a file cannot
            _ping_when_idle(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.sessions, "before_commit", _before_commit)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self.sessions.begin() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
