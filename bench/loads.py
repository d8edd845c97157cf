"""Load generators: wrk (closed loop, as many hops as the server takes) for throughput, and a
small threaded Python driver for steady rates, where every request's latency and every
report's reference code are kept, to match them with the alerts at the fake provider."""
from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import urlencode

LUA = Path(__file__).resolve().parent / "ussd.lua"
# report: job fraud, woman, Empat Lawang (item 2 of the alphabetical region list), nobody in
# danger, may contact me, send: seven keys, as in every earlier run
REPORT_KEYS = ["1", "1", "1", "2", "2", "1", "1"]
# browsing, nothing filed: help-lines (region list, its second page, Ogan Ilir's numbers), home,
# the four pages of danger signs, home, rights of victims and their pages
BROWSE_KEYS = ["2", "98", "9", "99", "3", "98", "98", "98", "99", "5", "1", "98", "98", "98"]
PEER_KEYS = ["1", "1", "1"]  # the peer's menu: report, category, victim -> reference code
USERS_PER_CONNECTION = 8  # virtual users share a connection, as callers share the aggregator's
REF = re.compile(r"Kode: ([2-9A-HJ-NP-Z]{6})")
SMS_TEXTS = ("LAPOR ada lowongan kerja ke Malaysia gaji besar di Prabumulih, paspor ditahan calo",
             "INFO Palembang", "TANDA", "HAK")


def percentile(values: list[float], p: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# -- wrk ----------------------------------------------------------------------------------

def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def wrk(url: str, keys: list[str], connections: int, seconds: float, tag: str, suffix: str = "",
        threads: int = 2, timeout_s: int = 2, finals: bool = False) -> dict:
    """Closed loop: every connection sends its next hop as soon as the last one is answered.
    `finals`: only final hops, each a new session carrying every key (each one files)."""
    users = max(1, connections // threads) * USERS_PER_CONNECTION
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", f"{timeout_s}s",
            "-s", str(LUA), url, "--", ",".join(keys), tag, str(users), suffix, "final" if finals else ""]
    before = _children_cpu()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    spent = _children_cpu() - before  # wrk's own CPU: it shares the cores it loads
    for line in result.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            out = json.loads(line[len("WRK_JSON "):])
            out["rps"] = out["requests"] / out["seconds"] if out["seconds"] else 0.0
            out["errors"] = out["bad"] + out["connect"] + out["read"] + out["write"] + out["timeout"]
            out["cpu_s"] = spent
            return out
    raise RuntimeError(f"wrk gave no result: {result.stdout[-500:]} {result.stderr[-500:]}")


# -- the Python driver ----------------------------------------------------------------------

class Client:
    """One keep-alive HTTP connection (re-opened when the server closes it)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(self, path: str, fields: dict) -> tuple[int, str, float]:
        body = urlencode(fields)
        started = time.perf_counter()
        try:
            self.conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
            response = self.conn.getresponse()
            data = response.read().decode(errors="replace")
            status = response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            status, data = 0, ""
        return status, data, time.perf_counter() - started


@dataclass
class Run:
    """What one steady-rate run saw."""

    started: float = 0.0
    seconds: float = 0.0
    hops: list = field(default_factory=list)     # latency (s) of every hop but the last of a session
    finals: list = field(default_factory=list)   # latency (s) of the hop that files the report
    refs: dict = field(default_factory=dict)     # reference code -> time.time() the answer arrived
    lags: list = field(default_factory=list)     # how late each session or message started (s)
    errors: int = 0
    done: int = 0                                # sessions (or messages) completed

    def merge(self, other: "Run") -> None:
        self.hops += other.hops
        self.finals += other.finals
        self.refs.update(other.refs)
        self.lags += other.lags
        self.errors += other.errors
        self.done += other.done


def _session(client: Client, path: str, sid: str, phone: str, keys: list[str], run: Run) -> None:
    for n in range(len(keys) + 1):
        status, body, latency = client.post(path, {"sessionId": sid, "serviceCode": "*123#", "networkCode": "51010",
                                                   "phoneNumber": phone, "text": "*".join(keys[:n])})
        last = n == len(keys)
        (run.finals if last else run.hops).append(latency)
        if status != 200 or not body.startswith("END " if last else "CON "):
            run.errors += 1
            return
        if last:
            found = REF.search(body)
            if found is None:
                run.errors += 1
                return
            run.refs[found.group(1)] = time.time()
    run.done += 1


OVERRUN = 1.5  # a steady run that falls this far behind (x its length) stops starting new items


def _steady(port: int, rate: float, seconds: float, threads: int, one) -> Run:
    """Open loop: item i starts at t0 + i/rate whatever happened to the ones before it (a late
    start is kept as lag, so a server that falls behind shows it). Items not started within
    OVERRUN x `seconds` are left out, so a run stays bounded: they show as missing in the counts."""
    counter, runs = itertools.count(), []
    t0 = time.perf_counter() + 0.2
    give_up = t0 + seconds * OVERRUN

    def loop() -> None:
        client, run = Client(port), Run()
        runs.append(run)
        while True:
            i = next(counter)
            due = t0 + i / rate
            if due - t0 >= seconds or time.perf_counter() > give_up:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            run.lags.append(max(0.0, -delay))
            one(client, i, run)

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    started = time.time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    total = Run(started=started, seconds=time.perf_counter() - t0)
    for run in runs:
        total.merge(run)
    return total


def steady_sessions(port: int, token: str, rate: float, seconds: float, tag: str, threads: int = 24) -> Run:
    """Full USSD report sessions (8 hops each) starting at `rate` per second."""
    path = f"/at/ussd?token={token}"

    def one(client: Client, i: int, run: Run) -> None:
        _session(client, path, f"{tag}-{i}", f"+62813{i % 100_000_000:08d}", REPORT_KEYS, run)
    return _steady(port, rate, seconds, threads, one)


def steady_sms(port: int, token: str, rate: float, seconds: float, tag: str, threads: int = 16) -> Run:
    """Incoming SMS callbacks at `rate` per second, each from its own number, a mix of reports and questions."""
    path = f"/at/sms?token={token}"

    def one(client: Client, i: int, run: Run) -> None:
        status, body, latency = client.post(path, {"from": f"+62815{i % 100_000_000:08d}", "to": "12345",
                                                   "id": f"ATXid_{tag}_{i}", "text": SMS_TEXTS[i % len(SMS_TEXTS)],
                                                   "date": "2025-01-01 10:00:00", "linkId": ""})
        run.hops.append(latency)
        if status != 200:
            run.errors += 1
        else:
            run.done += 1
    return _steady(port, rate, seconds, threads, one)


def alerts_seen(path: Path, since: float) -> dict[str, float]:
    """Reference code -> when its first alert was accepted by the fake provider."""
    first: dict[str, float] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            stamp, _, ref = line.partition(" ")
            if ref != "-" and float(stamp) >= since and ref not in first:
                first[ref] = float(stamp)
    return first
