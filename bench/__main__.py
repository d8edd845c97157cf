"""`make bench` (`python -m bench`): every scenario in one run, then a table.

Everything runs on loopback in a temporary directory: a private redis-server, the fake Africa's
Talking, the web server, two RQ workers (one per core), the bare Flask baseline and the
durable-filing baseline (bench/filing_app.py) on the same server settings, and the
ussd-menu-builder peer installed there with npm. Scenarios: (a) report sessions, (g) browsing
sessions, (f) final hops alone against the durable-filing baseline, (b) the final hop at steady
rates, (c) report to alert, (d) incoming SMS, (e) what sessions keep in Redis, (i) the reader. Each scenario starts
on a fresh database and an empty Redis, so no backlog carries over. Results: the table on
stdout, var/bench/last.md and var/bench/last.json.

Environment: BENCH_SECONDS (60: each steady end-to-end run), BENCH_WRK_SECONDS (10: each wrk
run), BENCH_SERVER (granian: the server `make run` uses), BENCH_POSTGRES_URL (PostgreSQL to
use, a private schema per scenario, dropped at the end; `skip` to leave it out), BENCH_ONLY (some
scenarios only, for a targeted run: peer, a, browse, filing, steady, rq, intake; the table then
lacks the others)."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from . import intake, loads
from .stack import ROOT, VENV_BIN, WEBHOOK_TOKEN, Process, Stack, cpu_seconds, free_port, install_peer, wait_for

SECONDS = float(os.environ.get("BENCH_SECONDS") or 60)
WRK_SECONDS = float(os.environ.get("BENCH_WRK_SECONDS") or 10)
SERVER = os.environ.get("BENCH_SERVER") or "granian"
SERVERS = ("gunicorn-sync", "granian")
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WORKERS = 2  # one RQ worker process per core
TOKEN = f"?token={WEBHOOK_TOKEN}"
FINAL_HOP_RATES = (20, 50)  # reports/s while the final hop is timed: (c)'s steady rate, and a busier one
FINAL_HOP_SECONDS = 12
SMS_RATE = 200
DRAIN_SECONDS = 30  # after a steady run: how long the workers get to finish before the backlog is counted
APP = "gateway:create_app"
BASELINE = "bench.baseline_app:create_app"
FILING = "bench.filing_app:create_app"
ONLY = set(filter(None, (os.environ.get("BENCH_ONLY") or "").split(",")))


class Table:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, scenario: str, measure: str, value, unit: str = "", target: str = "", met: Optional[bool] = None):
        row = dict(scenario=scenario, measure=measure, value=value, unit=unit, target=target,
                   met="" if met is None else ("yes" if met else "**no**"))
        self.rows.append(row)
        shown = _shown(value)
        print(f"  {scenario:<34} {measure:<44} {shown:>10} {unit:<6} {target:<14} {row['met']}", flush=True)

    def markdown(self) -> str:
        lines = ["| scenario | measure | value | target | met |", "|---|---|---:|---|---|"]
        for r in self.rows:
            shown = _shown(r["value"])
            lines.append(f"| {r['scenario']} | {r['measure']} | {shown} {r['unit']} | {r['target']} | {r['met']} |")
        return "\n".join(lines)


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def ms(seconds: Optional[float]) -> float:
    return float("nan") if seconds is None else seconds * 1000


class Bench:
    def __init__(self, work: Path):
        self.work = work
        self.stack = Stack(work)
        self.table = Table()
        self.n = 0
        self.env: dict = {}
        self.base = ""
        self.pg_admin = None  # an engine on BENCH_POSTGRES_URL while the PostgreSQL scenarios run
        self.schemas: list[str] = []

    # -- setup ----------------------------------------------------------------------------
    def fresh(self, database: str = "sqlite", server: str = SERVER, workers: int = WORKERS,
              app: str = APP) -> str:
        """Web and workers restarted on a new database (a new SQLite file, or for `postgresql` a
        new schema) and an empty Redis."""
        s = self.stack
        s.stop_web()
        s.stop_workers()
        s.redis.flushall()
        self.n += 1
        var = self.work / f"var-{self.n}"
        url = f"sqlite:///{var / 'gateway.db'}" if database == "sqlite" else self._new_schema()
        self.env = s.env(url, var)
        if app == APP:
            s.prepare_database(self.env)
        if workers:
            s.start_workers(workers, self.env)
        self.base = s.start_web(server, app, self.env, name=f"web-{self.n}")
        return self.base

    def memory(self, scenario: str) -> None:
        s = self.stack
        web = s.web_rss_mb()
        self.table.add(scenario, "web worker RSS", web, "MB", "<= 120 MB", web <= 120)
        if s.workers:
            self.table.add(scenario, "RQ worker RSS", s.worker_rss_mb(), "MB")

    def drain(self, seconds: float = DRAIN_SECONDS) -> tuple[int, float]:
        """Wait for the queue to empty; (jobs left, seconds waited)."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            if self.stack.queue_depth() == 0:
                break
            time.sleep(0.5)
        return self.stack.queue_depth(), time.monotonic() - started

    def alerts_for(self, run: loads.Run, deadline: float) -> dict[str, float]:
        """First alert per reference code, waiting (up to `deadline`) for any still missing:
        an empty queue does not mean the last job's alert has reached the provider yet."""
        while True:
            alerts = loads.alerts_seen(self.stack.alerts_file, run.started)
            if all(ref in alerts for ref in run.refs) or time.monotonic() >= deadline:
                return alerts
            time.sleep(0.5)

    def wrk(self, url: str, keys: list[str], connections: int, tag: str, suffix: str = TOKEN, cpu=None,
            finals: bool = False) -> dict:
        """loads.wrk, plus where the cores went: CPU µs per hop of each part (`cpu()`, by default
        the stack's: web, workers, Redis, fake Africa's Talking) and of wrk itself, during the run."""
        cpu = cpu or self.stack.cpu_by_part
        before = cpu()
        r = loads.wrk(url, keys, connections, WRK_SECONDS, tag, suffix, finals=finals)
        after = cpu()
        spent = {part: after[part] - before[part] for part in after}
        spent["load generator"] = r["cpu_s"]
        r["cpu_us"] = {part: seconds / max(r["requests"], 1) * 1e6 for part, seconds in spent.items()}
        return r

    def cpu_row(self, scenario: str, r: dict) -> None:
        shown = ", ".join(f"{part} {us:,.0f}" for part, us in r["cpu_us"].items() if us >= 0.5)
        self.table.add(scenario, "CPU per hop during the run, µs", f"{shown}; total {sum(r['cpu_us'].values()):,.0f}")

    # -- scenarios ------------------------------------------------------------------------
    def peer(self) -> Optional[float]:
        print("peer: installing ussd-menu-builder with npm", flush=True)
        target = install_peer()
        if target is None:
            self.table.add("peer ussd-menu-builder", "not measured (npm, node or its sources missing)", "-")
            return None
        port = free_port()
        proc = Process("peer", ["node", "app.js"], self.stack.logs / "peer.log", {**os.environ, "PORT": str(port)},
                       cwd=target)
        try:
            wait_for(lambda: urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/echo", method="POST", data=b""), timeout=1).status == 200, 20, "peer")
            r = self.wrk(f"http://127.0.0.1:{port}/ussd", loads.PEER_KEYS, 32, "peer", "",
                         cpu=lambda: {"node": cpu_seconds(proc.pid)})
            self.table.add("peer ussd-menu-builder, 32 conn", "hops/s (menu, category, victim, end)", r["rps"], "/s")
            self.table.add("peer ussd-menu-builder, 32 conn", "p99", r["p99_ms"], "ms")
            self.table.add("peer ussd-menu-builder, 32 conn", "errors", r["errors"])
            self.cpu_row("peer ussd-menu-builder, 32 conn", r)
            return r["rps"]
        finally:
            proc.stop()

    def servers(self) -> dict:
        """Baseline and gateway at 32 connections on each server; the chosen one is scenario (a)."""
        out = {}
        for server in SERVERS:
            self.fresh(server=server, workers=0, app=BASELINE)
            r = self.wrk(f"{self.base}/at/ussd", loads.REPORT_KEYS, 32, f"base-{server}", "")
            self.table.add(f"baseline bare Flask, {server}, 32 conn", "requests/s", r["rps"], "/s")
            self.table.add(f"baseline bare Flask, {server}, 32 conn", "p99", r["p99_ms"], "ms")
            self.cpu_row(f"baseline bare Flask, {server}, 32 conn", r)
            self.memory(f"baseline bare Flask, {server}")
            base = r
            self.fresh(server=server)
            r = self.wrk(f"{self.base}/at/ussd", loads.REPORT_KEYS, 32, f"a32-{server}")
            out[server] = (base, r)
            scenario = f"(a) USSD hops, {server}, 32 conn"
            self.table.add(scenario, "hops/s", r["rps"], "/s")
            self.table.add(scenario, "ratio to baseline, same server", r["rps"] / base["rps"], "x", ">= 0.6",
                           r["rps"] / base["rps"] >= 0.6)
            self.table.add(scenario, "p99", r["p99_ms"], "ms", "<= 25 ms", r["p99_ms"] <= 25)
            self.table.add(scenario, "errors (non-200, bad body, socket, timeout)", r["errors"], "", "0",
                           r["errors"] == 0)
            self.table.add(scenario, "reports filed (END screens)", r["ends"])
            self.cpu_row(scenario, r)
            self.memory(scenario)
        return out

    def web_alone(self) -> float:
        """(a)'s report sessions with the workers stopped: what the web alone reaches when the
        routing and alerting every report causes does not share the cores (the reports wait,
        queued). The workers' share of (a)'s miss, and the web's own."""
        self.fresh(workers=0)
        r = self.wrk(f"{self.base}/at/ussd", loads.REPORT_KEYS, 32, "a32-alone")
        scenario = f"(a) USSD hops, {SERVER}, 32 conn, workers stopped"
        self.table.add(scenario, "hops/s", r["rps"], "/s")
        self.table.add(scenario, "p99", r["p99_ms"], "ms")
        self.table.add(scenario, "errors", r["errors"], "", "0", r["errors"] == 0)
        self.cpu_row(scenario, r)
        return r["rps"]

    def browsing(self, base: Optional[float], peer: Optional[float]) -> None:
        """Browsing sessions (`bench.loads.BROWSE_KEYS`: help-lines and their pages, the signs,
        the rights pages; nothing filed), against the peer and the bare Flask baseline."""
        self.fresh()
        r = self.wrk(f"{self.base}/at/ussd", loads.BROWSE_KEYS, 32, "browse")
        scenario = f"(g) browsing sessions, {SERVER}, 32 conn"
        open_keys = sum(1 for _ in self.stack.redis.scan_iter("ussd:*", count=1000))
        self.table.add(f"(e) live Africa's Talking sessions, {SERVER}", "session keys in Redis after the browsing run "
                       "(every session left open)", open_keys, "", "0", open_keys == 0)
        self.table.add(scenario, "hops/s", r["rps"], "/s")
        if peer:
            self.table.add(scenario, "ratio to peer ussd-menu-builder", r["rps"] / peer, "x", ">= 1.0",
                           r["rps"] / peer >= 1.0)
        if base:
            self.table.add(scenario, "ratio to bare Flask, same server", r["rps"] / base, "x", ">= 0.6",
                           r["rps"] / base >= 0.6)
        self.table.add(scenario, "p99", r["p99_ms"], "ms", "<= 25 ms", r["p99_ms"] <= 25)
        self.table.add(scenario, "errors", r["errors"], "", "0", r["errors"] == 0)
        self.cpu_row(scenario, r)
        self.fresh()
        r = self.wrk(f"{self.base}/at/ussd", loads.BROWSE_KEYS, 256, "browse256")
        scenario = f"(g) browsing sessions, {SERVER}, 256 conn"
        self.table.add(scenario, "hops/s", r["rps"], "/s")
        self.table.add(scenario, "p99", r["p99_ms"], "ms")
        self.table.add(scenario, "errors (non-200, bad body, socket, timeout)", r["errors"], "", "0",
                       r["errors"] == 0)
        self.memory(scenario)

    def filing(self, database: str, label: str) -> None:
        """Final hops only (each request a new session carrying every key, so each files a
        report), workers stopped, against the durable-filing baseline (`bench/filing_app.py`:
        one row and one RQ job in one transaction) on the same server and database."""
        self.fresh(database=database, workers=0, app=FILING)
        base = self.wrk(f"{self.base}/at/ussd", loads.REPORT_KEYS, 32, f"fbase-{database}", "", finals=True)
        self.fresh(database=database, workers=0)
        r = self.wrk(f"{self.base}/at/ussd", loads.REPORT_KEYS, 32, f"final-{database}", finals=True)
        scenario = f"(f) final hops only, {label}, 32 conn, workers stopped"
        self.table.add(f"baseline durable filing, {label}, 32 conn", "final hops/s", base["rps"], "/s")
        self.table.add(f"baseline durable filing, {label}, 32 conn", "p99", base["p99_ms"], "ms")
        self.table.add(f"baseline durable filing, {label}, 32 conn", "errors", base["errors"], "", "0",
                       base["errors"] == 0)
        self.cpu_row(f"baseline durable filing, {label}, 32 conn", base)
        self.table.add(scenario, "final hops/s (reports filed)", r["rps"], "/s")
        ratio = r["rps"] / base["rps"] if base["rps"] else 0.0
        self.table.add(scenario, "ratio to the durable-filing baseline", ratio, "x", ">= 0.5", ratio >= 0.5)
        self.table.add(scenario, "p99", r["p99_ms"], "ms")
        self.table.add(scenario, "errors", r["errors"], "", "0", r["errors"] == 0)
        self.cpu_row(scenario, r)

    def many_connections(self) -> None:
        self.fresh()
        r = self.wrk(f"{self.base}/at/ussd", loads.REPORT_KEYS, 256, "a256")
        scenario = f"(a) USSD hops, {SERVER}, 256 conn"
        self.table.add(scenario, "hops/s", r["rps"], "/s")
        self.table.add(scenario, "p99", r["p99_ms"], "ms")
        self.table.add(scenario, "errors (non-200, bad body, socket)", r["errors"] - r["timeout"], "", "0",
                       r["errors"] - r["timeout"] == 0)
        self.table.add(scenario, "timeouts (2 s)", r["timeout"], "", "0", r["timeout"] == 0)
        self.memory(scenario)

    def final_hop(self, database: str, label: str) -> None:
        """Full sessions at a steady rate, workers busy with the alerts; the hop that files is timed."""
        for rate in FINAL_HOP_RATES:
            self.fresh(database=database)
            run = loads.steady_sessions(self.stack.web_port, WEBHOOK_TOKEN, rate, FINAL_HOP_SECONDS, f"b{rate}")
            scenario = f"(b) final report hop, {label}, {rate} reports/s"
            p99 = ms(loads.percentile(run.finals, 99))
            self.table.add(scenario, "p50", ms(loads.percentile(run.finals, 50)), "ms")
            self.table.add(scenario, "p99", p99, "ms", "<= 50 ms", p99 <= 50)
            self.table.add(scenario, "other hops p99", ms(loads.percentile(run.hops, 99)), "ms")
            self.table.add(scenario, "reports filed / errors", f"{len(run.refs)} / {run.errors}", "", "0 errors",
                           run.errors == 0)
        self.memory(scenario)

    def end_to_end(self, rate: float) -> None:
        self.fresh()
        run = loads.steady_sessions(self.stack.web_port, WEBHOOK_TOKEN, rate, SECONDS, f"c{rate:g}")
        depth_at_end = self.stack.queue_depth()
        load_ended = time.monotonic()
        left, waited = self.drain()
        alerts = self.alerts_for(run, load_ended + DRAIN_SECONDS)
        delays = [alerts[ref] - t for ref, t in run.refs.items() if ref in alerts]
        scenario = f"(c) report -> alert, {rate:g} reports/s, {SECONDS:g} s"
        achieved = run.done / run.seconds if run.seconds else 0.0
        self.table.add(scenario, "reports filed / errors", f"{len(run.refs)} / {run.errors}", "",
                       f"{int(rate * SECONDS)} / 0", run.errors == 0 and len(run.refs) >= int(rate * SECONDS))
        self.table.add(scenario, "sessions completed per second", achieved, "/s", f">= {rate * 0.95:g}",
                       achieved >= rate * 0.95)
        self.table.add(scenario, "session start lag p99", ms(loads.percentile(run.lags, 99)), "ms")
        self.table.add(scenario, "final hop p99", ms(loads.percentile(run.finals, 99)), "ms", "<= 50 ms",
                       ms(loads.percentile(run.finals, 99)) <= 50)
        p50, p99 = ms(loads.percentile(delays, 50)), ms(loads.percentile(delays, 99))
        missing = len(run.refs) - len(delays)
        if rate <= 20:
            self.table.add(scenario, "report -> first alert p50", p50, "ms", "<= 150 ms", p50 <= 150)
            self.table.add(scenario, "report -> first alert p99", p99, "ms", "<= 1000 ms", p99 <= 1000)
        else:
            self.table.add(scenario, "report -> first alert p50", p50, "ms")
            self.table.add(scenario, "report -> first alert p99", p99, "ms")
        self.table.add(scenario, f"reports without an alert {DRAIN_SECONDS} s after", missing, "", "0", missing == 0)
        self.table.add(scenario, "queue at end of load (jobs)", depth_at_end, "", "not growing", depth_at_end < rate)
        self.table.add(scenario, f"queue after {waited:.0f} s more", left)
        self.memory(scenario)

    def incoming_sms(self, database: str = "sqlite", label: str = "") -> None:
        self.fresh(database=database, workers=0)  # the webhook alone first: what it costs without the work it queues
        alone = loads.steady_sms(self.stack.web_port, WEBHOOK_TOKEN, SMS_RATE, 10, "d0")
        scenario = f"(d) incoming SMS{label}, {SMS_RATE}/s, 10 s, workers stopped"
        self.table.add(scenario, "accepted / errors", f"{alone.done} / {alone.errors}", "", "0 errors",
                       alone.errors == 0)
        self.table.add(scenario, "achieved rate", alone.done / alone.seconds if alone.seconds else 0.0, "/s")
        self.table.add(scenario, "webhook p50", ms(loads.percentile(alone.hops, 50)), "ms")
        self.table.add(scenario, "webhook p99", ms(loads.percentile(alone.hops, 99)), "ms")
        self.fresh(database=database)
        seconds = min(SECONDS, 30.0)
        run = loads.steady_sms(self.stack.web_port, WEBHOOK_TOKEN, SMS_RATE, seconds, "d")
        depth = self.stack.queue_depth()
        left, waited = self.drain()
        scenario = f"(d) incoming SMS{label}, {SMS_RATE}/s, {seconds:g} s"
        self.table.add(scenario, "accepted / errors", f"{run.done} / {run.errors}", "", "0 errors", run.errors == 0)
        self.table.add(scenario, "achieved rate", run.done / run.seconds if run.seconds else 0.0, "/s",
                       f">= {SMS_RATE * 0.95:g}", run.done / run.seconds >= SMS_RATE * 0.95)
        self.table.add(scenario, "webhook p50", ms(loads.percentile(run.hops, 50)), "ms")
        self.table.add(scenario, "webhook p99", ms(loads.percentile(run.hops, 99)), "ms")
        self.table.add(scenario, "queue at end of load (jobs)", depth)
        self.table.add(scenario, f"queue after {waited:.0f} s more", left)
        self.memory(scenario)

    def _new_schema(self) -> str:
        """A private, empty schema for one PostgreSQL scenario: nothing owed carries over."""
        from sqlalchemy import text
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with self.pg_admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"

    def postgres(self) -> None:
        """(b), and (d) since SQLite's one write lock is shared with the workers, on PostgreSQL."""
        if POSTGRES_URL == "skip":
            self.table.add("(b), (d) on PostgreSQL", "skipped: BENCH_POSTGRES_URL=skip", "-")
            return
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError
        try:
            self.pg_admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
            with self.pg_admin.connect():
                pass
        except SQLAlchemyError as exc:
            self.table.add("(b), (d) on PostgreSQL",
                           f"skipped: no PostgreSQL at {POSTGRES_URL.split('@')[-1]} ({type(exc).__name__})", "-")
            return
        try:
            if wanted("filing"):
                self.filing("postgresql", "PostgreSQL")
            if wanted("steady"):
                self.final_hop("postgresql", "PostgreSQL")
                self.incoming_sms("postgresql", ", PostgreSQL")
        finally:
            self.stack.stop_web()
            self.stack.stop_workers()
            with self.pg_admin.begin() as conn:
                for schema in self.schemas:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            self.pg_admin.dispose()

    def worker_class(self) -> None:
        """No-op jobs per second for each RQ worker class, one process each, burst mode."""
        url = f"redis://127.0.0.1:{self.stack.redis_port}/0"
        from redis import Redis
        from rq import Queue
        queue = Queue("bench", connection=Redis.from_url(url))
        jobs = 600
        for cls in ("rq.SimpleWorker", "rq.Worker"):
            self.stack.redis.flushall()
            for _ in range(jobs):
                queue.enqueue("bench.jobs.noop")
            started = time.perf_counter()
            subprocess.run([str(VENV_BIN / "rq"), "worker", "--burst", "--url", url, "-w", cls, "--quiet", "bench"],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
            rate = jobs / (time.perf_counter() - started)
            self.table.add("RQ worker class, no-op jobs", cls, rate, "jobs/s")
        self.stack.redis.flushall()


def wanted(*scenarios: str) -> bool:
    """BENCH_ONLY (comma-separated: peer, a, browse, filing, steady, rq, intake) runs only those."""
    return not ONLY or bool(ONLY.intersection(scenarios))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> int:
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: run `make bench`, which installs it", file=sys.stderr)
            return 2
    started = datetime.now(timezone.utc)
    print(f"make bench: {started:%Y-%m-%d %H:%M} UTC on {machine()}", flush=True)
    print(f"server {SERVER}; steady runs {SECONDS:g} s, wrk runs {WRK_SECONDS:g} s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="tppo-bench-"))
    bench = Bench(work)
    try:
        bench.stack.start_redis()
        bench.stack.start_fake_at()
        peer = bench.peer() if wanted("peer", "browse", "a") else None
        base = None
        if wanted("a"):
            pairs = bench.servers()
            base, gateway = pairs[SERVER]
            base = base["rps"]
            if peer:
                bench.table.add(f"(a) USSD hops, {SERVER}, 32 conn", "ratio to peer ussd-menu-builder",
                                gateway["rps"] / peer, "x", ">= 1.0", gateway["rps"] / peer >= 1.0)
            alone = bench.web_alone()
            if peer:
                bench.table.add(f"(a) USSD hops, {SERVER}, 32 conn, workers stopped", "ratio to peer", alone / peer,
                                "x")
        if wanted("browse"):
            if base is None:
                bench.fresh(workers=0, app=BASELINE)
                r = bench.wrk(f"{bench.base}/at/ussd", loads.BROWSE_KEYS, 32, "base-browse", "")
                bench.table.add(f"baseline bare Flask, {SERVER}, 32 conn", "requests/s", r["rps"], "/s")
                bench.cpu_row(f"baseline bare Flask, {SERVER}, 32 conn", r)
                base = r["rps"]
            bench.browsing(base, peer)
        if wanted("a"):
            bench.many_connections()
        if wanted("filing"):
            bench.filing("sqlite", "SQLite")
        if wanted("steady"):
            bench.final_hop("sqlite", "SQLite")
        if wanted("filing", "steady"):
            bench.postgres()
        if wanted("steady"):
            bench.end_to_end(20)
            bench.end_to_end(100)
            bench.incoming_sms()
        if wanted("rq"):
            bench.worker_class()
        if wanted("intake"):
            cold, warm = intake.cpu_per_message()
            bench.table.add("(i) SMS intake, labelled corpus", "CPU per message, empty stem cache", cold * 1e6, "us",
                            "< 1000", cold < 1e-3)
            bench.table.add("(i) SMS intake, labelled corpus", "CPU per message, warm", warm * 1e6, "us", "< 1000",
                            warm < 1e-3)
    finally:
        bench.stack.stop_all()
        for data in [*work.glob("var-*"), work / "redis"]:  # databases and the append-only file; logs stay
            shutil.rmtree(data, ignore_errors=True)
    elapsed = (datetime.now(timezone.utc) - started).total_seconds()
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    header = (f"`make bench`, {started:%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s; {machine()}; "
              f"load average at end {os.getloadavg()[0]:.2f}; server {SERVER}")
    (out / "last.md").write_text(f"{header}\n\n{bench.table.markdown()}\n")
    (out / "last.json").write_text(json.dumps({"started": started.isoformat(), "seconds": elapsed,
                                               "machine": machine(), "rows": bench.table.rows}, indent=1))
    print(f"\n{header}\n\n{bench.table.markdown()}\n\nwritten to {out / 'last.md'}; logs in {work / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
