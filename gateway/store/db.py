"""One SQLAlchemy engine per process, shared by the web app and the worker."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 5000  # wait this long for another writer instead of failing
# For an UPDATE by primary key or state (a compare-and-set) in a unit of work that holds no
# loaded copy of those rows: SQLAlchemy need not search its identity map for copies to refresh,
# a measurable share of a short job. `session.execute(stmt, execution_options=UNSYNCED)`.
UNSYNCED = {"synchronize_session": False}


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")   # readers do not block the one writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes under WAL
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


class Database:
    def __init__(self, url: str):
        self.url = make_url(url)
        if self.url.get_backend_name() == "sqlite" and self.url.database not in (None, "", ":memory:"):
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        sqlite = self.url.get_backend_name() == "sqlite"
        # A server connection can go stale (PostgreSQL restarted): test it at checkout. A file cannot,
        # and the test would cost a statement on every unit of work.
        self.engine: Engine = create_engine(url, pool_pre_ping=not sqlite)
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

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
