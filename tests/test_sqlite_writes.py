"""SQLite's one write lock: a process that answers callers (the web app) waits for it by trying
again every WRITE_POLL_SECONDS, a worker in SQLite's own busy handler (gateway/store/db.py).
How much sooner the web gets the lock is measured by `make bench`, not here; these tests hold
what must not break: a prompt writer waits for the lock instead of failing, gives up after
the same busy timeout as anyone, and leaves nothing half-done from a refused try."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from config.settings import Settings
from gateway.runtime import build_runtime
from gateway.store import db as store_db
from gateway.store.db import Database
from gateway.store.models import AuditEvent


def _file(url: str) -> str:
    return str(Path(url.removeprefix("sqlite:///")))


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


def _opened(url: str, prompt_writes: bool) -> Database:
    """A Database whose first connection has put the file in WAL mode, as a running gateway's
    has: switching the journal mode needs the lock the tests hold."""
    database = Database(url, prompt_writes=prompt_writes)
    assert _audit_rows(database) == 0
    return database


def _busy_timeout(database: Database) -> int:
    with database.engine.connect() as conn:
        return conn.execute(text("PRAGMA busy_timeout")).scalar()


def _audit_rows(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


@pytest.mark.parametrize("prompt_writes", [True, False])
def test_a_write_waits_for_the_lock_and_then_commits_once(sqlite_url, prompt_writes):
    database = _opened(sqlite_url, prompt_writes)
    thread, released = _hold_write_lock(_file(sqlite_url), 0.15)
    with database.session() as session:
        session.add(AuditEvent(actor="test", action="waited", detail="for the lock"))
    written = time.monotonic()
    thread.join()
    assert released and written >= released[0]  # it waited, it did not write beside the lock
    assert _audit_rows(database) == 1  # the refused tries left nothing behind
    database.dispose()


def test_a_prompt_writer_gives_up_after_the_busy_timeout(sqlite_url, monkeypatch):
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    database = _opened(sqlite_url, prompt_writes=True)
    thread, _ = _hold_write_lock(_file(sqlite_url), 1.0)
    started = time.monotonic()
    with pytest.raises(Exception, match="database is locked"):
        with database.session() as session:
            session.add(AuditEvent(actor="test", action="refused", detail="lock held throughout"))
    assert 0.2 <= time.monotonic() - started < 1.0
    thread.join()
    assert _audit_rows(database) == 0
    database.dispose()


def test_only_a_busy_database_is_tried_again(sqlite_url):
    database = _opened(sqlite_url, prompt_writes=True)
    started = time.monotonic()
    with pytest.raises(Exception, match="no such table"):
        with database.session() as session:
            session.execute(text("INSERT INTO no_such_table VALUES (1)"))
    assert time.monotonic() - started < 1.0  # refused at once, not polled for SQLITE_BUSY_TIMEOUT_MS
    database.dispose()


def test_reads_never_wait_for_the_lock(sqlite_url):
    database = _opened(sqlite_url, prompt_writes=True)
    thread, released = _hold_write_lock(_file(sqlite_url), 0.3)
    assert _audit_rows(database) == 0
    assert not released  # read while the other writer still held the lock
    thread.join()
    database.dispose()


def test_the_web_polls_for_the_lock_and_a_worker_keeps_sqlites_busy_handler(settings_overrides):
    settings = Settings.from_env(**settings_overrides)
    web, worker = build_runtime(settings), build_runtime(settings, redis_timeout=None, prompt_writes=False)
    assert _busy_timeout(web.db) == 0  # it tries again itself, every WRITE_POLL_SECONDS
    assert _busy_timeout(worker.db) == store_db.SQLITE_BUSY_TIMEOUT_MS
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
        assert _busy_timeout(rt.db) == store_db.SQLITE_BUSY_TIMEOUT_MS and rt.redis_timeout is None
        rt.db.dispose()
    finally:
        worker_runtime.runtime.cache_clear()
