"""Fixtures on real parts: a redis-server started on a free port, a SQLite file (and
PostgreSQL when one answers), the real africastalking SDK talking to a local fake, and real
RQ worker processes. Each test gets an empty Redis database and a fresh schema."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import redis
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_at import FakeAfricasTalking  # noqa: E402

ENV_NAMES = ("GATEWAY_ENV", "DATABASE_URL", "REDIS_URL", "AT_USERNAME", "AT_API_KEY", "AT_SENDER_ID",
             "AT_API_URL", "WEBHOOK_TOKEN", "DATA_KEY", "VAR_DIR", "TIME_SCALE", "RETENTION_DAYS",
             "INBOX_RETENTION_DAYS", "LIMIT_USSD_SESSIONS_PER_HOUR", "LIMIT_REPORTS_PER_DAY", "LIMIT_SMS_PER_HOUR",
             "ALLOWED_NETWORKS", "PROXY_HOPS", "SMS_PROVIDER", "SMS8X8_API_KEY", "SMS8X8_SUBACCOUNT_ID",
             "SMS8X8_SENDER_ID", "SMS8X8_API_URL", "SECRET_KEY", "METRICS_TOKEN", "STAFF_PASSWORD", "LOG_FORMAT",
             "LOG_LEVEL", "LIMIT_SMS_SENT_PER_MINUTE", "WORKER_HOST", "WORKER_HEARTBEAT_SECONDS")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.yaml from the app")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


def redis_command(port: int, workdir: Path, appendonly: bool = False) -> list[str]:
    """A private redis-server's command line; `appendonly` keeps an append-only file in `workdir`."""
    return [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if appendonly else "no", "--dir", str(workdir), "--loglevel", "warning"]


def start_redis(workdir: Path, appendonly: bool = False) -> tuple[subprocess.Popen, int]:
    """A redis-server on a free port. The port is free when chosen but another process may take
    it first (parallel test runs on one machine); then our server exits while the other one
    answers, so the server that answers must be ours (its process id)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test`, which installs it")
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(redis_command(port, workdir, appendonly), stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        try:
            wait_until(lambda c=client, p=proc: _ping(c) or p.poll() is not None)
            ours = proc.poll() is None and client.info("server")["process_id"] == proc.pid
        finally:
            client.close()
        if ours:
            return proc, port
        proc.kill()
        proc.wait()
    pytest.fail("could not start redis-server on a free port")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private redis-server for the whole run (never the machine's own)."""
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield {"port": port, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(10)


def _ping(client) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


@pytest.fixture
def redis_url(redis_server):
    url = f"redis://127.0.0.1:{redis_server['port']}/0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def _postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path, migrated_sqlite):
    """A fresh, migrated database: a SQLite file, then (same test again) a PostgreSQL schema."""
    if request.param == "sqlite":
        yield _fresh_sqlite(migrated_sqlite, tmp_path)
        return
    with postgres_schema("t") as url:
        yield url


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A migrated schema of its own at TEST_POSTGRES_URL, dropped afterwards; the test is
    skipped with the reason when no PostgreSQL answers there."""
    from gateway.store.migrate import upgrade

    if not _postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (set TEST_POSTGRES_URL): PostgreSQL case skipped")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """One SQLite file migrated to the head revision; each test gets a copy of it, which costs
    far less than running every migration again."""
    from gateway.store.migrate import upgrade

    path = tmp_path_factory.mktemp("schema") / "gateway.db"
    upgrade(f"sqlite:///{path}")
    return path


def _fresh_sqlite(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "gateway.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(migrated_sqlite, tmp_path):
    return _fresh_sqlite(migrated_sqlite, tmp_path)


@pytest.fixture(scope="session")
def data_key():
    return Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Tests never pick up the developer's own settings."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings_overrides(sqlite_url, redis_url, data_key, tmp_path):
    return {"database_url": sqlite_url, "redis_url": redis_url, "data_key": data_key, "var_dir": tmp_path / "var"}


@contextmanager
def app_with(overrides: dict):
    """An app for one test; its database pool and Redis connections closed after it."""
    from gateway import create_app

    app = create_app(overrides)
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        runtime = app.extensions["gateway"].runtime
        runtime.db.dispose()
        runtime.redis.close()


def sandbox_at(fake_at) -> dict:
    """Settings for a sandbox Africa's Talking account whose SDK sends to the local fake."""
    return {"at_username": "sandbox", "at_api_key": fake_at.api_key, "at_api_url": fake_at.base_url}


@pytest.fixture
def app(settings_overrides):
    with app_with(settings_overrides) as app:
        yield app


@pytest.fixture
def at_app(settings_overrides, fake_at):
    with app_with({**settings_overrides, **sandbox_at(fake_at)}) as app:
        yield app


@pytest.fixture
def runtime(app):
    return app.extensions["gateway"].runtime


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def fake_at():
    with FakeAfricasTalking() as fake:
        yield fake


@pytest.fixture
def worker_env(settings_overrides, fake_at):
    """Environment for a worker process that sends through the SDK to the fake provider."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(DATABASE_URL=settings_overrides["database_url"], REDIS_URL=settings_overrides["redis_url"],
               DATA_KEY=settings_overrides["data_key"], VAR_DIR=str(settings_overrides["var_dir"]),
               AT_USERNAME="tppo-test", AT_API_KEY=fake_at.api_key, AT_API_URL=fake_at.base_url,
               PYTHONPATH=str(ROOT))
    return env


@pytest.fixture
def start_worker(worker_env, tmp_path):
    """Start `python -m workers` processes; all are stopped at the end of the test."""
    procs = []

    def start(extra_env=None):
        log = open(tmp_path / f"worker-{len(procs)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env={**worker_env, **(extra_env or {})},
                                stdout=log, stderr=subprocess.STDOUT)
        proc.log_file, proc.log_path = log, Path(log.name)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.log_file.close()
