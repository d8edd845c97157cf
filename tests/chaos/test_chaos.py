"""Fault injection: 200 reports per scenario through the real webhook, real RQ worker processes,
a private redis-server that can be killed and restarted, and the fake Africa's Talking API
failing on command; each scenario on SQLite and again on PostgreSQL (a schema of its own at
TEST_POSTGRES_URL, skipped with a reason when none answers; scenario (e) stops a private
cluster of its own instead). After each scenario every report a caller was shown a code for
must be stored, every stored report routed, and its agency must have received exactly one
alert, counted at the fake.

Each report is a job-fraud report about a woman in one of the 17 kabupaten/kota, nobody in
danger: the routing table sends it to that area's Polres (24/7) and nowhere else, so the
expected alert is known without asking the system under test. `make chaos` runs this alone
and prints one table per store; RELIABILITY.md records them."""
from __future__ import annotations

import functools
import glob
import logging
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests
from conftest import (
    ENV_NAMES,
    ROOT,
    _ping,
    free_port,
    postgres_schema,
    redis_command,
    start_redis,
    wait_until,
)
from expected_routes import POLICE
from phone import Phone, flask_transport, http_transport
from rq.job import Job
from sqlalchemy import func, select, text
from stack import session_processes

from flows.engine import State
from gateway import create_app
from gateway.cases import roster
from gateway.content import load_content
from gateway.messaging import outbox
from gateway.store.models import AuditEvent, Outbox, Report

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

REPORTS = 200
WORKERS = 2
TIME_SCALE = "0.1"  # reconciler every 3 s, a stalled send released after 12 s
RECOVERY_SECONDS = 120
HEARTBEAT_SECONDS = 8  # scenario (g): WORKER_HEARTBEAT_SECONDS, far under RQ's 120 s, above any job here
AREAS = list(POLICE)
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
RESULTS: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}


class RedisServer:
    """A redis-server of our own, so a scenario can kill it and start it again on its port:
    empty, or from its append-only file."""

    def __init__(self, workdir: Path, appendonly: bool = False):
        self.port, self.workdir, self.proc, self.appendonly = None, workdir, None, appendonly

    def start(self):
        """The first start picks a free port; a restart reuses it, as a restarted Redis would."""
        if self.port is None:
            self.proc, self.port = start_redis(self.workdir, self.appendonly)
            return
        self.proc = subprocess.Popen(redis_command(self.port, self.workdir, self.appendonly), stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_until(lambda: _ping(client), timeout=10)
        client.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary directory, so scenario (e) can stop it
    without touching the machine's. initdb refuses root, so as root it runs as `nobody`."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        bindir = Path(found[-1]).parent if found else (Path(shutil.which("initdb")).parent
                                                        if shutil.which("initdb") else None)
        if bindir is None or not (bindir / "pg_ctl").exists():
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or "
                        "on PATH: scenario (e) needs a private cluster to stop")
        self.bindir, self.user = bindir, None
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("nobody")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "tppo-chaos"], check=True)
                self.user = pwd.getpwnam("tppo-chaos")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.port = None

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        as_user = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[]) if self.user else {}
        return subprocess.run([str(self.bindir / tool), *args], cwd=self.dir, capture_output=True, text=True,
                              timeout=60, check=check, **as_user)

    def start(self):
        """The first start picks a free port (another on a clash); a restart reuses it."""
        for _ in range(3):
            port = self.port or free_port()
            done = self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-t", "30",
                             "-o", f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={self.dir} "
                                   "-c max_connections=60", "start", check=False)
            if done.returncode == 0:
                self.port = port
                return
            if self.port:
                break
        raise RuntimeError(f"private PostgreSQL did not start: {done.stdout}{done.stderr}")

    def stop(self):
        """As a crash would: no checkpoint, every connection cut."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def destroy(self):
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@dataclass
class Stack:
    tmp: Path
    fake: object
    redis: RedisServer
    database_url: str
    data_key: str
    store: str
    workers: list = field(default_factory=list)
    logs: list = field(default_factory=list)

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
        env.update(DATABASE_URL=self.database_url, REDIS_URL=self.redis.url, DATA_KEY=self.data_key,
                   VAR_DIR=str(self.tmp / "var"), AT_USERNAME="sandbox", AT_API_KEY=self.fake.api_key,
                   AT_API_URL=self.fake.base_url, TIME_SCALE=TIME_SCALE, PYTHONPATH=str(ROOT), **extra)
        return env

    def start_worker(self, **extra):
        log = open(self.tmp / f"worker-{len(self.logs)}.log", "wb")
        self.logs.append(log)
        # its own process group, as on a host of its own: killing the group takes RQ's scheduler too
        proc = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=self.env(**extra), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(proc)
        return proc

    def start_workers(self, count: int = WORKERS):
        for _ in range(count):
            self.start_worker()

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


@pytest.fixture(params=STORES)
def store(request) -> str:
    return request.param


@pytest.fixture
def private_postgres(store):
    """Scenario (e)'s own cluster, which it stops and starts again."""
    if store == "sqlite":
        pytest.skip("SQLite is a file opened by each process: there is no database server to stop")
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def database(request, store, tmp_path):
    """A fresh, migrated database: a SQLite file, a schema of its own at TEST_POSTGRES_URL, or
    the private cluster when the test asks for it."""
    from gateway.store.migrate import upgrade

    if "private_postgres" in request.fixturenames:
        url = request.getfixturevalue("private_postgres").url
        upgrade(url)
        yield url
        return
    if store == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
        upgrade(url)
        yield url
        return
    with postgres_schema("chaos") as url:
        yield url


@pytest.fixture
def stack(request, store, database, tmp_path, fake_at, data_key):
    """Everything but the workers, which each scenario starts as it needs them."""
    noisy = [logging.getLogger(n) for n in ("gateway.http", "gateway.cases.reports", "gateway.messaging.outbox",
                                            "gateway.channels.base", "gateway.intake.inbox")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.CRITICAL)  # 1,800 requests a scenario, some failing on purpose: the table matters

    server = RedisServer(tmp_path, appendonly="aof" in request.node.name)
    server.start()
    s = Stack(tmp_path, fake_at, server, database, data_key, store)
    app = create_app({"database_url": database, "redis_url": server.url, "data_key": data_key,
                      "var_dir": tmp_path / "var", "at_username": "sandbox", "at_api_key": fake_at.api_key,
                      "at_api_url": fake_at.base_url})
    s.app = app
    s.runtime = app.extensions["gateway"].runtime
    roster.load_demo(s.runtime)
    s.desks = {r.agency_id: r.phone for r in roster.listing(s.runtime)}
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


class HopFailed(Exception):
    """The aggregator got no screen: an error status or no answer at all."""


@dataclass
class Calls:
    """What the callers saw."""

    shown: dict = field(default_factory=dict)  # reference code -> the desk its alert must reach
    ended: int = 0   # calls ended by an `END` screen without a code (the caller calls again)
    failed: int = 0  # calls cut by a hop with an error status or no answer
    errors: Counter = field(default_factory=Counter)  # status (or exception name) of those hops


def checked(post):
    """A transport that raises HopFailed instead of handing Phone an error page."""
    def send(form):
        try:
            status, body = post(form)
        except requests.RequestException as exc:
            raise HopFailed(type(exc).__name__) from None
        if status != 200:
            raise HopFailed(status)
        return status, body
    return send


def call(stack, calls: Calls, post, i: int, twice: bool = False, final_hop=None) -> bool:
    """Caller `i` files a report; True when shown a code. `final_hop(send)` wraps the last press."""
    area = i % len(AREAS)
    post = checked(post)
    if twice:  # the aggregator delivers every callback twice
        post = (lambda p: lambda form: (p(form), p(form))[1])(post)
    phone = Phone(post, number=f"+62812{70000000 + i:08d}")
    keys = report_keys(area)
    try:
        phone.dial()
        for key in keys[:-1]:
            phone.press(key)
        last = final_hop(lambda: phone.press(keys[-1])) if final_hop else phone.press(keys[-1])
    except HopFailed as exc:
        calls.failed += 1
        calls.errors[exc.args[0]] += 1
        return False
    if "Kode: " not in last:
        assert last.startswith("END "), last
        calls.ended += 1
        return False
    calls.shown[last.split("Kode: ")[1][:6]] = stack.desks[POLICE[AREAS[area]]]
    return True


def submit(stack, count: int, twice: bool = False, pause: float = 0.0, on_each=None) -> Calls:
    """File `count` reports through the webhook, in process; every caller must be shown a code."""
    calls, client = Calls(), stack.app.test_client()
    for i in range(count):
        assert call(stack, calls, flask_transport(client), i, twice=twice), calls
        if on_each:
            on_each(i)
        time.sleep(pause)
    return calls


def alerts_received(stack) -> Counter:
    """(reference code, desk) -> SMS received at the fake; replies to residents are not alerts."""
    desks, counts = set(stack.desks.values()), Counter()
    for m in stack.fake.messages:
        if m["to"] in desks:
            counts[(m["message"][5:11], m["to"])] += 1
    return counts


def stored_reports(stack) -> dict[str, str]:
    """Every report in this scenario's database -> the desk its alert must reach."""
    with stack.runtime.db.session() as session:
        rows = session.execute(select(Report.ref, Report.region_code)).all()
    return {ref: stack.desks[POLICE[region]] for ref, region in rows}


def outcome(stack, name: str, calls: Calls, submitted: int = REPORTS, recovery: float = RECOVERY_SECONDS,
            **notes) -> dict:
    """Wait until every stored report's alert arrived (or `recovery` s), then count."""
    expected = stored_reports(stack)
    expected.update({ref: desk for ref, desk in calls.shown.items() if ref not in expected})  # shown, lost: counted

    def complete():
        counts = alerts_received(stack)
        return all(counts[(ref, desk)] for ref, desk in expected.items())

    started = time.monotonic()
    try:
        wait_until(complete, timeout=recovery, interval=0.5)
    except TimeoutError:
        pass
    waited = time.monotonic() - started
    time.sleep(3)  # anything duplicated would arrive now
    counts = alerts_received(stack)
    with stack.runtime.db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Report))
        routed = session.scalar(select(func.count()).select_from(Report).where(Report.status == "routed"))
        released = session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.action == "send_released"))
    row = {"scenario": name, "submitted": submitted, "codes shown": len(calls.shown), "stored": stored,
           "routed": routed, "alerts expected": len(expected),
           "alerts received": sum(1 for ref, desk in expected.items() if counts[(ref, desk)]),
           "duplicates": sum(n - 1 for n in counts.values() if n > 1),
           "stray": sum(n for (ref, desk), n in counts.items() if expected.get(ref) != desk),
           "released mid-send": released, "recovered in": f"{waited:.0f} s",
           "shown, not stored": len(set(calls.shown) - set(stored_reports(stack))),
           "notes": "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in notes.items())}
    row["lost"] = row["alerts expected"] - row["alerts received"]
    RESULTS[stack.store].append(row)
    print_table()
    return row


COLUMNS = ["scenario", "submitted", "codes shown", "stored", "routed", "alerts expected", "alerts received", "lost",
           "duplicates", "stray", "released mid-send", "recovered in", "notes"]


def print_table():
    for store, rows in RESULTS.items():
        if rows:
            lines = [f"\n{store}:", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
            lines += ["| " + " | ".join(str(r.get(c, "-")) for c in COLUMNS) + " |" for r in rows]
            print("\n".join(lines), file=sys.stderr)


def assert_clean(row: dict, kills: int = 0):
    """Nothing lost, nothing stray; a duplicate only where a kill left a send in doubt and the
    reconciler released it (at least once: RELIABILITY.md), and never without kills."""
    assert row["shown, not stored"] == 0 and row["stored"] == row["routed"], row
    assert row["lost"] == 0 and row["stray"] == 0, row
    assert row["duplicates"] <= row["released mid-send"] <= kills, row


def test_workers_killed_at_random_points(stack):
    stack.start_workers()
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
    calls = submit(stack, REPORTS, pause=0.03)
    stop.set()
    thread.join()
    row = outcome(stack, f"(a) {len(kills)} worker SIGKILLs", calls)
    assert len(kills) >= 5
    assert_clean(row, kills=len(kills))


def test_redis_restarted_empty_mid_load(stack):
    stack.start_workers()

    def restart(i):
        if i == REPORTS // 2:
            stack.redis.kill()  # everything in Redis is gone: queue, scheduled retries, sessions
            time.sleep(1)
            stack.redis.start()

    calls = submit(stack, REPORTS, pause=0.01, on_each=restart)
    assert_clean(outcome(stack, "(b) Redis restarted empty", calls))


def test_provider_failing_or_slow_for_thirty_percent(stack):
    stack.start_workers()
    stack.fake.fail_ratio(0.3, seed=7, http_status=500, hang_share=0.3, hang_seconds=1.5)
    calls = submit(stack, REPORTS)
    assert_clean(outcome(stack, "(c) provider 500 or slow, 30%", calls))


def test_every_callback_delivered_twice(stack):
    stack.start_workers()
    calls = submit(stack, REPORTS, twice=True)
    assert_clean(outcome(stack, "(d) every callback twice", calls))


def post_sms(client, k: int) -> int:
    """An SMS as Africa's Talking posts it (TANDA: answered with one SMS, no report filed)."""
    return client.post("/at/sms", data={"from": f"+62813{55500000 + k:08d}", "to": "12345", "text": "TANDA",
                                        "id": f"ATXid_chaos_{k}", "date": "2026-12-03 10:00:00"}).status_code


def test_postgres_stopped_mid_load(stack, private_postgres):
    """(e) The database away for 10-20 s: a caller whose report cannot be saved gets the polite
    `END` screen and calls again later, an SMS callback gets 503 so the aggregator retries, and
    the work queued before and during the outage is done once it is back."""
    stack.start_workers()
    outage = random.Random(20261203).uniform(10, 20)
    back = threading.Event()

    def cut():
        private_postgres.stop()
        time.sleep(outage)
        private_postgres.start()
        back.set()

    thread = threading.Thread(target=cut, daemon=True)
    calls, client, again, sms = Calls(), stack.app.test_client(), [], Counter()
    refused = []
    for i in range(REPORTS):
        if i == REPORTS // 5:
            thread.start()
        if not call(stack, calls, flask_transport(client), i):
            again.append(i)
        if i % 4 == 0:
            status = post_sms(client, i)
            sms[status] += 1
            if status != 200:
                refused.append(i)
        time.sleep(0.1)
    assert back.wait(outage + 60), "the private PostgreSQL did not start again"
    ended = calls.ended
    for k in refused:  # the aggregator retries what was refused
        assert post_sms(client, k) == 200
    for i in again:  # a caller told the report could not be saved calls again
        assert call(stack, calls, flask_transport(client), i), calls
    row = outcome(stack, f"(e) PostgreSQL stopped {outage:.0f} s at report {REPORTS // 5}", calls,
                  USSD_END_screens_without_a_code=ended, SMS_callbacks_answered=dict(sorted(sms.items())))
    assert calls.failed == 0, calls.errors  # never an error page: a USSD caller gets an END screen
    assert ended >= 1 and set(sms) == {200, 503} and refused, (ended, sms)
    assert_clean(row)


class WebRun:
    """bin/run (the `make run` script) with one web process, against the scenario's Redis and
    database, in its own session."""

    def __init__(self, stack):
        self.port = free_port()
        venv = os.path.relpath(sys.prefix, ROOT)
        env = stack.env(HOST="127.0.0.1", PORT=str(self.port), WEB_WORKERS="1", VENV=venv)
        self.log_path = stack.tmp / "bin-run.log"
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["bin/run"], cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.wait_ready(60)

    def wait_ready(self, timeout: float = 30):
        def ready():
            assert self.proc.poll() is None, f"bin/run stopped:\n{self.log_path.read_text(errors='replace')}"
            try:
                return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_until(ready, timeout=timeout, interval=0.1)

    def web_process(self) -> int:
        """The granian worker process: a granian process whose parent is granian too."""
        procs = session_processes(self.proc.pid)
        granian = {pid for pid, cmd in procs.items() if "granian" in cmd}
        for pid in granian:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) in granian:
                return pid
        raise AssertionError(f"no granian worker process in {procs}")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        for pid in session_processes(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()


# The kills, in order: aimed at a final hop until one lands between commit and hand-over, or
# between two hops. Granian gives up on a worker that dies again within 5.5 s of its restart
# (RELIABILITY.md), so kills are spaced by KILL_SPACING_SECONDS and callers pace themselves.
KILL_PLAN = ("aimed", "aimed", "between two hops", "aimed", "aimed")
KILL_SPACING_SECONDS = 6.5


def test_web_process_killed_while_filing(stack):
    """(f) The web process (bin/run's, one granian worker) SIGKILLed while filing reports. An
    aimed kill stops the process the moment a report's row appears and kills it if the report
    is not in RQ's queue yet: between the commit and the hand-over. A caller cut off dials
    again; every stored report, shown or not, must be routed and alerted."""
    stack.start_workers()
    web = WebRun(stack)
    watch = stack.runtime.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    kills = Counter()

    def killed() -> int:
        return sum(n for how, n in kills.items() if how != "stopped after hand-over")

    def newest() -> int:
        return watch.execute(text("SELECT coalesce(max(id), 0) FROM reports")).scalar()

    def aimed(press):
        """Press the last key in a thread; stop the web process the moment the report's row is
        there, and kill it if the report is not yet in RQ's queue."""
        before, result, pid = newest(), {}, web.web_process()  # looked up first: the gap is short

        def run():
            try:
                result["screen"] = press()
            except HopFailed as exc:
                result["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        while thread.is_alive():
            time.sleep(0.0005)
            report_id = newest()
            if report_id > before:
                os.kill(pid, signal.SIGSTOP)
                if Job.exists(outbox.job_id("route_report", report_id), connection=stack.runtime.redis):
                    os.kill(pid, signal.SIGCONT)
                    kills["stopped after hand-over"] += 1
                else:
                    os.kill(pid, signal.SIGKILL)
                    # A hand-over already written to the socket still reaches Redis after
                    # the kill: only a report whose job never appears waits for the reconciler.
                    time.sleep(0.2)
                    if Job.exists(outbox.job_id("route_report", report_id), connection=stack.runtime.redis):
                        kills["as the hand-over reached Redis"] += 1
                    else:
                        kills["between commit and hand-over"] += 1
                break
        thread.join(30)
        if "error" in result:
            raise result["error"]
        return result["screen"]

    calls = Calls()
    try:
        post = http_transport(web.base_url)
        last_kill, plan = time.monotonic(), list(KILL_PLAN)
        for i in range(REPORTS):
            due = plan and time.monotonic() - last_kill > KILL_SPACING_SECONDS
            if due and plan[0] == "between two hops":
                os.kill(web.web_process(), signal.SIGKILL)
                kills[plan.pop(0)] += 1
                last_kill = time.monotonic()
            for attempt in range(3):
                aim = due and plan and plan[0] == "aimed" and not attempt
                before, landed = killed(), kills["between commit and hand-over"]
                shown = call(stack, calls, post, i, final_hop=aimed if aim else None)
                if kills["between commit and hand-over"] > landed:
                    plan.pop(0)
                if killed() > before:
                    last_kill = time.monotonic()
                if shown:
                    break
                web.wait_ready()  # cut off: the caller dials again once the service answers
            else:
                pytest.fail(f"caller {i} never got through: {calls}")
            time.sleep(0.05)
    finally:
        watch.close()
        web_log = web.log_path
        web.stop()
    with stack.runtime.db.session() as session:
        handed = session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.job == "route_report", Outbox.attempts > 1))
    row = outcome(stack, f"(f) {killed()} web SIGKILLs", calls,
                  kills=dict(kills), calls_cut_off=calls.failed,
                  route_report_handed_over_by_the_reconciler=handed)
    assert "Unexpected exit" in web_log.read_text(errors="replace")  # granian saw its worker die, and went on
    assert kills["between commit and hand-over"] >= 1, kills
    assert row["stored"] > len(calls.shown) and handed >= kills["between commit and hand-over"], (row, handed)
    assert_clean(row)


def _started(stack, prefix: str) -> list[str]:
    """Jobs RQ holds as started by a worker whose name begins with `prefix` (no cleanup)."""
    ids = stack.runtime.queue.started_job_registry.get_job_ids(cleanup=False)
    return [j.id for j in Job.fetch_many(ids, connection=stack.runtime.redis)
            if j is not None and (j.worker_name or "").startswith(prefix)]


def test_worker_host_killed(stack):
    """(g) Workers on two hosts, one of them killed (its whole process group, as a host dies)
    while it runs jobs: the other host cannot see its processes, so the killed host's started
    jobs wait for their heartbeat to expire (WORKER_HEARTBEAT_SECONDS), then RQ's registry
    cleanup on the surviving host retries them there. The killed host is the one not holding
    RQ's scheduler lock (RELIABILITY.md: what waits when the scheduler's host dies)."""
    beat = {"WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
    hosts = {"host-a": stack.start_worker(WORKER_HOST="host-a", **beat),
             "host-b": stack.start_worker(WORKER_HOST="host-b", **beat)}
    r = stack.runtime.redis
    held, struck = {}, threading.Event()

    def scheduler_host() -> str:
        """The host whose worker runs RQ's scheduler (a child process of the worker)."""
        owner = (r.get("rq:scheduler-lock:default") or b"").decode()
        pid = int(r.hget(f"rq:scheduler:{owner}", "pid") or 0)
        stat = Path(f"/proc/{pid}/stat").read_text() if pid and Path(f"/proc/{pid}/stat").exists() else ") 0 0"
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        return next((h for h, proc in hosts.items() if proc.pid == parent), "")

    def strike():
        wait_until(scheduler_host, timeout=10)
        victim = next(h for h in hosts if h != scheduler_host())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stack.fake.hang_next(2, 2.0)  # a send that hangs, then fails: the provider never took it
            stack.fake.fail_next(2, 503)
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                if _started(stack, victim):
                    # Frozen first: a job may finish between the look and the kill, and its
                    # bookkeeping already written to the socket still lands. What is started
                    # once the host stands still and its writes have landed is what it dies with.
                    os.killpg(hosts[victim].pid, signal.SIGSTOP)
                    time.sleep(0.2)
                    if jobs := _started(stack, victim):
                        os.killpg(hosts[victim].pid, signal.SIGKILL)
                        held.update(victim=victim, jobs=jobs, at=time.monotonic())
                        struck.set()
                        return
                    os.killpg(hosts[victim].pid, signal.SIGCONT)
                time.sleep(0.002)

    thread = threading.Thread(target=strike, daemon=True)
    calls = submit(stack, REPORTS, pause=0.02,
                   on_each=lambda i: thread.start() if i == REPORTS // 2 else None)
    thread.join(40)
    assert struck.is_set(), "no job was seen started on the host to kill"
    survivor = next(h for h in hosts if h != held["victim"])

    def taken_over():
        jobs = Job.fetch_many(held["jobs"], connection=r)
        return all(j is not None and j.get_status(refresh=False) == "finished"
                   and (j.worker_name or "").startswith(survivor) for j in jobs)

    try:
        wait_until(taken_over, timeout=HEARTBEAT_SECONDS + 30, interval=0.2)
    except TimeoutError:
        jobs = [(j.id, j.get_status(refresh=False), j.worker_name) if j else None
                for j in Job.fetch_many(held["jobs"], connection=r)]
        pytest.fail(f"not taken over: {jobs} {held}")
    took = time.monotonic() - held["at"]
    row = outcome(stack, f"(g) {held['victim']} killed, {len(held['jobs'])} started jobs", calls, kills=1,
                  taken_over_by=f"{survivor} after {took:.0f} s")
    assert took >= HEARTBEAT_SECONDS - 1, took  # not before the heartbeat expired: no pid judged across hosts
    assert_clean(row, kills=1)


def test_redis_killed_and_restarted_from_aof(stack):
    """(h) Redis SIGKILLed mid-load and started again from its append-only file (fsync every
    second, Redis's default): what the last second lost, the reconciler gives back."""
    client = redis.Redis(port=stack.redis.port)
    client.config_set("appendonly", "yes")
    stack.redis.appendonly = True
    wait_until(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0
               and client.info("persistence")["aof_enabled"] == 1, timeout=10)
    stack.start_workers()
    kept = {}

    def restart(i):
        if i == REPORTS // 2:
            stack.redis.kill()
            time.sleep(1)
            stack.redis.start()
            kept["keys"] = redis.Redis(port=stack.redis.port).dbsize()

    calls = submit(stack, REPORTS, pause=0.01, on_each=restart)
    row = outcome(stack, "(h) Redis SIGKILLed, restarted from its AOF", calls, keys_after_restart=kept["keys"])
    assert kept["keys"] > 0  # not empty: loaded from the file
    assert_clean(row)
