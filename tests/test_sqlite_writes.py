"""SQLite's one write lock: every process waits for it by trying again at a steady interval,
a process that answers callers (the web app) more often than a worker (gateway/store/db.py).
How much sooner the web gets the lock is measured by `make bench`, not here; these tests hold
what must not break: a writer waits for the lock instead of failing, gives up after the busy
timeout, and leaves nothing half-done from a refused try."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, select, text

from gateway.runtime import build_runtime
from gateway.settings import Settings
from gateway.store import db as store_db
from gateway.store.db import WEB_WRITE_POLL_SECONDS, WORKER_WRITE_POLL_SECONDS, Database
from gateway.store.models import AuditEvent


def _hold_write_lock(path: str, seconds: float) -> tuple[threading.Thread, list[float]]:
    """Another writer takes the lock now and commits after `seconds`; the time it let go."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released: list[float] = []

    def release() -> None:
        time.sleep(seconds)
        holder.execute("COMMIT")
        released.append(time.monotonic())
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread, released


def _opened(url: str, write_poll_seconds: float = WEB_WRITE_POLL_SECONDS) -> Database:
    """A Database whose first connection has put the file in WAL mode, as a running gateway's
    has: switching the journal mode needs the lock the tests hold."""
    database = Database(url, write_poll_seconds)
    assert _audit_rows(database) == 0
    return database


def _waiting(database: Database) -> tuple[int, float]:
    """SQLite's own busy timeout, and how often the connection tries again itself."""
    with database.engine.connect() as conn:
        return (conn.execute(text("PRAGMA busy_timeout")).scalar(),
                conn.connection.dbapi_connection.write_poll_seconds)


def _audit_rows(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


@pytest.mark.parametrize("poll", [WEB_WRITE_POLL_SECONDS, WORKER_WRITE_POLL_SECONDS])
def test_a_write_waits_for_the_lock_and_then_commits_once(sqlite_url, poll):
    database = _opened(sqlite_url, poll)
    thread, released = _hold_write_lock(database.url.database, 0.15)
    with database.session() as session:
        session.add(AuditEvent(actor="test", action="waited", detail="for the lock"))
    written = time.monotonic()
    thread.join()
    assert released and written >= released[0]  # it waited, it did not write beside the lock
    assert _audit_rows(database) == 1  # the refused tries left nothing behind
    database.dispose()


def test_a_writer_gives_up_after_the_busy_timeout(sqlite_url, monkeypatch):
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    database = _opened(sqlite_url)
    thread, _ = _hold_write_lock(database.url.database, 1.0)
    started = time.monotonic()
    with pytest.raises(Exception, match="database is locked"):
        with database.session() as session:
            session.add(AuditEvent(actor="test", action="refused", detail="lock held throughout"))
    assert 0.2 <= time.monotonic() - started < 1.0
    thread.join()
    assert _audit_rows(database) == 0
    database.dispose()


def test_only_a_busy_database_is_tried_again(sqlite_url):
    database = _opened(sqlite_url)
    started = time.monotonic()
    with pytest.raises(Exception, match="no such table"):
        with database.session() as session:
            session.execute(text("INSERT INTO no_such_table VALUES (1)"))
    assert time.monotonic() - started < 1.0  # refused at once, not polled for SQLITE_BUSY_TIMEOUT_MS
    database.dispose()


def test_reads_never_wait_for_the_lock(sqlite_url):
    database = _opened(sqlite_url)
    thread, released = _hold_write_lock(database.url.database, 0.3)
    assert _audit_rows(database) == 0
    assert not released  # read while the other writer still held the lock
    thread.join()
    database.dispose()


def test_the_web_tries_for_the_lock_more_often_than_a_worker(settings_overrides):
    settings = Settings.from_env(**settings_overrides)
    web = build_runtime(settings)
    worker = build_runtime(settings, redis_timeout=None, write_poll_seconds=WORKER_WRITE_POLL_SECONDS)
    assert _waiting(web.db) == (0, WEB_WRITE_POLL_SECONDS)  # 0: not SQLite's back-off, our steady polling
    assert _waiting(worker.db) == (0, WORKER_WRITE_POLL_SECONDS)
    assert WEB_WRITE_POLL_SECONDS < WORKER_WRITE_POLL_SECONDS
    web.db.dispose()
    worker.db.dispose()


def test_the_worker_process_builds_its_runtime_as_a_worker(settings_overrides, monkeypatch):
    from workers import runtime as worker_runtime

    env = {"DATABASE_URL": settings_overrides["database_url"], "REDIS_URL": settings_overrides["redis_url"],
           "DATA_KEY": settings_overrides["data_key"], "VAR_DIR": str(settings_overrides["var_dir"])}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    worker_runtime.runtime.cache_clear()
    try:
        rt = worker_runtime.runtime()
        assert _waiting(rt.db) == (0, WORKER_WRITE_POLL_SECONDS) and rt.redis_timeout is None
        rt.db.dispose()
    finally:
        worker_runtime.runtime.cache_clear()
