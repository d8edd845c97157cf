"""Fault injection: 200 reports per scenario through the real webhook, two real RQ worker
processes, a private redis-server that can be restarted empty, and the fake Africa's Talking
API failing on command. After each scenario every report must be in the database, routed,
and its agency must have received exactly one alert, counted at the fake.

Each report is a job-fraud report about a woman in one of the 17 kabupaten/kota, nobody in
danger: the routing table sends it to that area's Polres (24/7) and nowhere else, so the
expected alert is known without asking the system under test. `make chaos` runs this alone
and prints the table; RELIABILITY.md records it."""
from __future__ import annotations

import functools
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from conftest import ENV_NAMES, ROOT, _ping, start_redis, wait_until
from phone import Phone, flask_transport
from sqlalchemy import func, select

from flows.engine import State
from gateway import create_app
from gateway.cases import roster
from gateway.content import load_content
from gateway.store.models import AuditEvent, Report

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

REPORTS = 200
WORKERS = 2
TIME_SCALE = "0.1"  # reconciler every 3 s, a stalled send released after 12 s
RECOVERY_SECONDS = 120
POLICE = {  # area -> its Polres, from config/agencies.yaml
    "16.01": "polres_oku", "16.02": "polres_oki", "16.03": "polres_muara_enim", "16.04": "polres_lahat",
    "16.05": "polres_musi_rawas", "16.06": "polres_muba", "16.07": "polres_banyuasin",
    "16.08": "polres_oku_timur", "16.09": "polres_oku_selatan", "16.10": "polres_ogan_ilir",
    "16.11": "polres_empat_lawang", "16.12": "polres_pali", "16.13": "polres_muratara",
    "16.71": "polres_palembang", "16.72": "polres_pagar_alam", "16.73": "polres_lubuklinggau",
    "16.74": "polres_prabumulih",
}
AREAS = list(POLICE)
RESULTS: list[dict] = []


class RedisServer:
    """A redis-server of our own, so one scenario can restart it empty."""

    def __init__(self, workdir: Path):
        self.port, self.workdir, self.proc = None, workdir, None

    def start(self):
        """The first start picks a free port; a restart reuses it, as a restarted Redis would."""
        if self.port is None:
            self.proc, self.port = start_redis(self.workdir)
            return
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir), "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_until(lambda: _ping(client), timeout=10)
        client.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass
class Stack:
    tmp: Path
    fake: object
    redis: RedisServer
    database_url: str
    data_key: str
    workers: list = field(default_factory=list)
    logs: list = field(default_factory=list)

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
        env.update(DATABASE_URL=self.database_url, REDIS_URL=self.redis.url, DATA_KEY=self.data_key,
                   VAR_DIR=str(self.tmp / "var"), AT_USERNAME="sandbox", AT_API_KEY=self.fake.api_key,
                   AT_API_URL=self.fake.base_url, TIME_SCALE=TIME_SCALE, PYTHONPATH=str(ROOT))
        return env

    def start_worker(self):
        log = open(self.tmp / f"worker-{len(self.logs)}.log", "wb")
        self.logs.append(log)
        proc = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=self.env(), stdout=log,
                                stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def live_workers(self):
        return [w for w in self.workers if w.poll() is None]

    def stop(self):
        for proc in self.live_workers():
            proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs:
            log.close()


@pytest.fixture
def stack(tmp_path, fake_at, data_key):
    from gateway.store.migrate import upgrade

    noisy = [logging.getLogger(n) for n in ("gateway.http", "gateway.cases.reports", "gateway.messaging.outbox")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.ERROR)  # 1,600 requests a scenario: the table is what matters

    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(database_url)
    server = RedisServer(tmp_path)
    server.start()
    s = Stack(tmp_path, fake_at, server, database_url, data_key)
    app = create_app({"database_url": database_url, "redis_url": server.url, "data_key": data_key,
                      "var_dir": tmp_path / "var", "at_username": "sandbox", "at_api_key": fake_at.api_key,
                      "at_api_url": fake_at.base_url})
    s.app = app
    s.runtime = app.extensions["gateway"].runtime
    roster.load_demo(s.runtime)
    s.desks = {r.agency_id: r.phone for r in roster.listing(s.runtime)}
    for _ in range(WORKERS):
        s.start_worker()
    yield s
    s.stop()
    server.kill()
    s.runtime.db.dispose()
    for logger, level in zip(noisy, levels, strict=True):
        logger.setLevel(level)


@functools.cache
def _region_list() -> tuple[list[str], int]:
    """The kabupaten/kota codes in the order the report's list shows them, and how many fit on
    its first page."""
    engine = load_content().engine
    return [item.value for item in engine.data.sources["regions"]], len(engine.shown(State(screen="region")))


def report_keys(area_index: int) -> list[str]:
    """Job fraud, woman, the area (paging on as a caller would: the list is alphabetical and
    only the page shown answers), nobody in danger, may contact, send."""
    listed, first_page = _region_list()
    place = listed.index(AREAS[area_index])
    return ["1", "1", "1", *["98"] * (place >= first_page), str(place + 1), "2", "1", "1"]


def submit(stack, count: int, twice: bool = False, pause: float = 0.0, on_each=None) -> dict[str, str]:
    """File `count` reports through the webhook; returns ref -> expected desk number."""
    client = stack.app.test_client()
    expected = {}
    for i in range(count):
        area = i % len(AREAS)
        post = flask_transport(client)
        if twice:  # the aggregator delivers every callback twice
            post = (lambda p: lambda form: (p(form), p(form))[1])(post)
        screens = Phone(post, number=f"+62812{70000000 + i:08d}").run(report_keys(area))
        assert "Kode: " in screens[-1], screens[-1]
        expected[screens[-1].split("Kode: ")[1][:6]] = stack.desks[POLICE[AREAS[area]]]
        if on_each:
            on_each(i)
        time.sleep(pause)
    return expected


def outcome(stack, name: str, expected: dict[str, str]) -> dict:
    def received():
        counts = Counter()
        for m in stack.fake.messages:
            ref = m["message"][5:11]
            counts[(ref, m["to"])] += 1
        return counts

    def complete():
        counts = received()
        return all(counts[(ref, desk)] for ref, desk in expected.items())

    try:
        wait_until(complete, timeout=RECOVERY_SECONDS, interval=0.5)
    except TimeoutError:
        pass
    time.sleep(3)  # anything duplicated would arrive now
    counts = received()
    with stack.runtime.db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Report).where(Report.ref.in_(list(expected))))
        routed = session.scalar(select(func.count()).select_from(Report).where(
            Report.ref.in_(list(expected)), Report.status == "routed"))
    row = {"scenario": name, "submitted": len(expected), "stored": stored, "routed": routed,
           "alerts expected": len(expected),
           "alerts received": sum(1 for ref, desk in expected.items() if counts[(ref, desk)]),
           "duplicates": sum(n - 1 for n in counts.values() if n > 1),
           "stray": sum(n for (ref, desk), n in counts.items() if expected.get(ref) != desk)}
    row["lost"] = row["alerts expected"] - row["alerts received"]
    RESULTS.append(row)
    print_table()
    return row


def print_table():
    columns = ["scenario", "submitted", "stored", "routed", "alerts expected", "alerts received", "lost",
               "duplicates", "stray", "released mid-send"]
    lines = [" | ".join(columns)] + [" | ".join(str(r.get(c, "-")) for c in columns) for r in RESULTS]
    print("\n" + "\n".join(lines), file=sys.stderr)


def assert_clean(row: dict):
    assert row["stored"] == row["submitted"] == row["routed"], row
    assert row["lost"] == 0 and row["stray"] == 0, row
    assert row["duplicates"] == 0, row


def test_workers_killed_at_random_points(stack):
    rng, stop = random.Random(20261128), threading.Event()
    kills = []

    def killer():
        while not stop.wait(rng.uniform(0.3, 1.2)):
            victim = rng.choice(stack.live_workers())
            victim.send_signal(signal.SIGKILL)
            kills.append(victim.pid)
            stack.start_worker()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    expected = submit(stack, REPORTS, pause=0.03)
    stop.set()
    thread.join()
    row = outcome(stack, f"(a) {len(kills)} worker SIGKILLs", expected)
    assert len(kills) >= 5
    # A kill that lands after the provider accepted an SMS but before its row says so leaves it
    # `sending`; the reconciler sends it again (at least once: a lost alert costs more). Only
    # those releases may repeat an alert, and each is an audit row.
    with stack.runtime.db.session() as session:
        released = session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.action == "send_released"))
    row["released mid-send"] = released
    print_table()
    assert row["stored"] == row["submitted"] == row["routed"] and row["lost"] == 0 and row["stray"] == 0, row
    assert row["duplicates"] <= released <= len(kills), row


def test_redis_restarted_empty_mid_load(stack):
    def restart(i):
        if i == REPORTS // 2:
            stack.redis.kill()  # everything in Redis is gone: queue, scheduled retries, sessions
            time.sleep(1)
            stack.redis.start()

    expected = submit(stack, REPORTS, pause=0.01, on_each=restart)
    assert_clean(outcome(stack, "(b) Redis restarted empty", expected))


def test_provider_failing_or_slow_for_thirty_percent(stack):
    stack.fake.fail_ratio(0.3, seed=7, http_status=500, hang_share=0.3, hang_seconds=1.5)
    expected = submit(stack, REPORTS)
    assert_clean(outcome(stack, "(c) provider 500 or slow, 30%", expected))


def test_every_callback_delivered_twice(stack):
    expected = submit(stack, REPORTS, twice=True)
    assert_clean(outcome(stack, "(d) every callback twice", expected))
