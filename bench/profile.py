"""Profile the gateway in one process, on a private redis-server and a SQLite file (`final`: PostgreSQL):

    python -m bench.profile [sessions]        the USSD request path: full report sessions
    python -m bench.profile worker [reports]  the worker: reports filed, then routed and alerted
    python -m bench.profile sms [messages]    the worker: incoming SMS (bench.loads' mix) answered
    python -m bench.profile browse [sessions] browsing hops (nothing filed): CPU per hop, the gateway's
                                              against the bare Flask baseline's, in the same process
    python -m bench.profile replay-gateway [sessions]   browsing sessions and nothing else, for an
    python -m bench.profile replay-baseline [sessions]  instruction count: see BENCHMARKS.md
    python -m bench.profile final [hops]      final hops only, each a new session (scenario f), on
                                              PostgreSQL (BENCH_POSTGRES_URL, a private schema; `skip`:
                                              SQLite): CPU, SQL statements, Redis round trips per hop,
                                              the gateway's against the durable-filing baseline's

`hops`, the default, calls the app as a WSGI server would (no HTTP server, so only the gateway's
own work shows): the time per hop, per hop without the report, per final hop, then
pyinstrument's tree. `worker` files reports with the web's own ReportDesk (`sms` posts SMS to
the webhook), then works the queue with the real worker in burst mode against the fake Africa's
Talking: CPU, Redis commands and SQL statements (and commits) per unit of work, the CPU of a
no-op job on RQ's stock SimpleWorker beside it (RQ's own floor on that machine), and where the
CPU goes by library (cProfile's own time). The app's log lines go to a file, as under a server.
This is how the request path's hot spots were found (BENCHMARKS.md)."""
from __future__ import annotations

import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

from pyinstrument import Profiler
from sqlalchemy import event

from .loads import BROWSE_KEYS, REPORT_KEYS, SMS_TEXTS, percentile
from .stack import WEBHOOK_TOKEN, Stack

ANSWERS = {"victim": "woman", "region": "16.71", "urgent": False, "contact": True}


def _quiet_stderr(work: Path):
    """The app logs to stderr: point it at a file (as a server's log) and keep the terminal."""
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    log = open(work / "app.log", "w")
    os.dup2(log.fileno(), 2)
    sys.stderr = log
    return terminal


def _poster(app):
    """A WSGI app called as the server calls it (no test client in the profile)."""
    def post(form: dict) -> str:
        body = urlencode(form).encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/at/ussd", "QUERY_STRING": f"token={WEBHOOK_TOKEN}",
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                   "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/x-www-form-urlencoded",
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
                   "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
                   "wsgi.run_once": False, "wsgi.version": (1, 0)}
        status = []
        text = b"".join(app(environ, lambda s, h, exc=None: status.append(s))).decode()
        assert status[0].startswith("200") and text[:4] in ("CON ", "END "), (status, text)
        return text
    return post


def hops(stack: Stack, sessions: int, out) -> None:
    from gateway import create_app
    post = _poster(create_app().wsgi_app)
    spent = {"first": 0.0, "menus": 0.0, "final": 0.0}

    def session(n: int) -> None:
        for i in range(len(REPORT_KEYS) + 1):
            started = time.perf_counter()
            post({"sessionId": f"p-{n}", "phoneNumber": f"+62813{n:08d}", "serviceCode": "*123#",
                  "text": "*".join(REPORT_KEYS[:i])})
            kind = "first" if i == 0 else "final" if i == len(REPORT_KEYS) else "menus"
            spent[kind] += time.perf_counter() - started

    for n in range(20):  # warm up: connections opened, caches filled
        session(1_000_000 + n)
    spent.update(first=0.0, menus=0.0, final=0.0)
    for n in range(sessions):
        session(2_000_000 + n)
    per = lambda kind, count: spent[kind] / sessions / count * 1000  # noqa: E731
    without = (spent["first"] + spent["menus"]) / sessions / len(REPORT_KEYS) * 1000
    print(f"{sessions} sessions, not profiled, in-process: {without:.3f} ms per hop without the report "
          f"(first hop {per('first', 1):.3f}, the rest {per('menus', len(REPORT_KEYS) - 1):.3f}), "
          f"{per('final', 1):.2f} ms per final hop (the report filed)", file=out)
    profiler = Profiler(interval=0.0005)
    with profiler:
        for n in range(sessions):
            session(n)
    print(profiler.output_text(unicode=True, color=False, show_all=False), file=out)


def browse(stack: Stack, sessions: int, out, only: str = "") -> None:
    """CPU per browsing hop (`bench.loads.BROWSE_KEYS`, every hop of a session, the first one
    included), for the gateway and for the bare Flask baseline, alternated in rounds: the
    difference is the gateway's own work on top of the framework. Then pyinstrument's tree."""
    from bench.baseline_app import create_app as baseline
    from gateway import create_app
    apps = {"gateway": _poster(create_app().wsgi_app), "baseline": _poster(baseline().wsgi_app)}
    hops_per_session = len(BROWSE_KEYS) + 1
    serial = iter(range(10_000_000))

    def run(post, count: int) -> float:
        started = time.process_time()
        for _ in range(count):
            n = next(serial)
            for i in range(hops_per_session):
                post({"sessionId": f"b-{n}", "phoneNumber": f"+62813{n:08d}", "serviceCode": "*123#",
                      "networkCode": "51010", "text": "*".join(BROWSE_KEYS[:i])})
        return (time.process_time() - started) / count / hops_per_session * 1e6

    for post in apps.values():
        run(post, 20)  # warm up
    if only:  # replay-*: no timing, no output (under callgrind, with 0 sessions subtracted)
        run(apps[only], sessions)
        return
    rounds = {name: [] for name in apps}
    for _ in range(5):
        for name, post in apps.items():
            rounds[name].append(run(post, max(1, sessions // 5)))
    best = {name: min(values) for name, values in rounds.items()}
    print(f"{sessions} browsing sessions of {hops_per_session} hops, CPU per hop (best of 5 rounds; all: "
          + "; ".join(f"{name} " + " ".join(f"{v:.0f}" for v in values) for name, values in rounds.items())
          + f"): gateway {best['gateway']:.1f} us, baseline {best['baseline']:.1f} us, our own work "
          f"{best['gateway'] - best['baseline']:.1f} us", file=out)
    profiler = Profiler(interval=0.0002)
    with profiler:
        run(apps["gateway"], sessions)
    print(profiler.output_text(unicode=True, color=False, show_all=False), file=out)


def final(stack: Stack, hops: int, out) -> None:
    """Scenario (f) in one process: every call a new session carrying every key, so every call
    files. The gateway and the durable-filing baseline (bench/filing_app.py) alternate in three
    rounds on the same database; per final hop, CPU, SQL statements and Redis round trips."""
    import redis.connection
    from sqlalchemy.engine import Engine

    from bench.filing_app import create_app as baseline
    from gateway import create_app
    apps = {"gateway": _poster(create_app().wsgi_app), "baseline": _poster(baseline().wsgi_app)}
    serial = iter(range(10_000_000))
    counted = Counter()

    def run(post, count: int) -> float:
        started = time.process_time()
        for _ in range(count):
            n = next(serial)
            post({"sessionId": f"f-{n}", "phoneNumber": f"+62812{n:08d}", "serviceCode": "*123#",
                  "networkCode": "51010", "text": "*".join(REPORT_KEYS)})
        return (time.process_time() - started) / count * 1e6

    def statement(*_args):
        counted["statements"] += 1

    real_send = redis.connection.Connection.send_packed_command

    def send(connection, *args, **kwargs):
        counted["round trips"] += 1
        return real_send(connection, *args, **kwargs)

    for post in apps.values():
        run(post, 20)  # warm up
    rounds = {name: [] for name in apps}
    for _ in range(3):
        for name, post in apps.items():
            rounds[name].append(run(post, hops))
    print(f"{hops} final hops a round, CPU per final hop (3 rounds): "
          + "; ".join(f"{name} " + " ".join(f"{v:.0f}" for v in values) + " us" for name, values in rounds.items()),
          file=out)
    for name, post in apps.items():
        counted.clear()
        event.listen(Engine, "before_cursor_execute", statement)
        redis.connection.Connection.send_packed_command = send
        try:
            run(post, hops)
        finally:
            redis.connection.Connection.send_packed_command = real_send
            event.remove(Engine, "before_cursor_execute", statement)
        print(f"  {name}: SQL statements {counted['statements'] / hops:.2f}, Redis round trips "
              f"{counted['round trips'] / hops:.2f} per final hop", file=out)


def _postgres_schema(url: str):
    """A private schema on `url` for one profile, and a function that drops it."""
    import uuid

    from sqlalchemy import create_engine, text
    schema, admin = f"profile_{uuid.uuid4().hex[:10]}", create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return f"{url}?options=-csearch_path%3D{schema}", drop


def worker(stack: Stack, reports: int, out) -> None:
    from gateway.cases.reports import NewReport, ReportDesk
    from workers.runtime import runtime
    desk = ReportDesk(runtime())
    categories = [c.id for c in desk.runtime.content.directory.categories]

    def file(first: int) -> None:
        for n in range(first, first + reports):
            desk.submit(NewReport("at-ussd", f"s{n}", f"+62813{n:08d}",
                                  {**ANSWERS, "category": categories[n % len(categories)]}))

    _work(stack, file, reports, "report", out)


def sms(stack: Stack, messages: int, out) -> None:
    from gateway import create_app
    client = create_app().test_client()

    def receive(first: int) -> None:
        for n in range(first, first + messages):
            response = client.post(f"/at/sms?token={WEBHOOK_TOKEN}", data={
                "from": f"+62815{n:08d}", "to": "12345", "id": f"ATXid_p{n}", "text": SMS_TEXTS[n % len(SMS_TEXTS)],
                "date": "2025-01-01 10:00:00", "linkId": ""})
            assert response.status_code == 200, response.get_data(as_text=True)

    _work(stack, receive, messages, "incoming SMS", out)


def _work(stack: Stack, feed, count: int, unit: str, out) -> None:
    """`feed(first)` queues `count` units of work; the worker then works the queue in burst mode."""
    from gateway import logs
    from workers.runtime import runtime
    from workers.worker import GatewayWorker
    rt = runtime()
    logs.configure(json_lines=True)

    wall = []

    def work() -> float:
        """CPU of this process only: the fake Africa's Talking and Redis run in their own."""
        started, wall_started = time.process_time(), time.perf_counter()
        GatewayWorker([rt.queue], rt).work(burst=True, with_scheduler=False, logging_level="WARNING")
        wall.append(time.perf_counter() - wall_started)
        return (time.process_time() - started) / count * 1000

    def commands() -> Counter:
        return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in stack.redis.info("commandstats").items()})

    sql = Counter()
    lock = _WriteLock()

    def counted(kind: str):
        return lambda *args: sql.update([kind])

    feed(0)
    work()  # warm up
    # CPU is timed on a run of its own: the counting listeners below cost the worker CPU too.
    feed(50_000)
    cpu = work()
    feed(100_000)
    before = commands()  # after the feed: the web's own commands (filing, enqueuing) are not the worker's
    listeners = [(rt.db.engine, "before_cursor_execute", counted("statements")),
                 (rt.db.engine, "commit", counted("commits")), *lock.listeners(rt.db.engine)]
    for listener in listeners:
        event.listen(*listener)
    work()
    for listener in listeners:
        event.remove(*listener)
    used = commands() - before
    floor = _rq_noop_cpu(stack)
    print(f"{count} x {unit}: worker CPU {cpu:.2f} ms per {unit}; SQL statements per {unit} "
          f"{sql['statements'] / count:.1f} in {sql['commits'] / count:.1f} commits; Redis commands per {unit} "
          f"{sum(used.values()) / count:.1f}:", file=out)
    print("  " + ", ".join(f"{name} {n / count:.2f}" for name, n in used.most_common(12)), file=out)
    print(f"RQ's own floor on this machine, now: a no-op job costs SimpleWorker {floor:.2f} ms of CPU; one "
          f"{unit} costs {cpu / floor:.1f} of those", file=out)
    held = sorted(lock.held)
    print(f"SQLite's write lock (first INSERT/UPDATE/DELETE to commit) held {sum(held) / count * 1000:.2f} ms per "
          f"{unit} in {len(held) / count:.2f} transactions, p50 {percentile(held, 50) * 1000:.2f} ms, p90 "
          f"{percentile(held, 90) * 1000:.2f} ms: {sum(held) / wall[-1]:.0%} of the worker's time, during which "
          f"every other writer (the webhooks, the other worker) waits", file=out)
    feed(200_000)
    profile = cProfile.Profile()
    profile.runcall(work)
    by_library: Counter = Counter()
    for (path, _, _), (_, _, own, _, _) in pstats.Stats(profile).stats.items():
        by_library[_library(path)] += own
    total = sum(by_library.values())
    print("where the CPU goes (cProfile, own time):", file=out)
    for library, seconds in by_library.most_common(12):
        print(f"  {library:<28} {seconds / total:6.1%}", file=out)


def _rq_noop_cpu(stack: Stack, jobs: int = 1000) -> float:
    """CPU per job of RQ's stock SimpleWorker on no-op jobs, on the same Redis and machine: the
    least any one job costs, whatever it does (bench/jobs.py)."""
    from rq import Queue, SimpleWorker
    queue = Queue("bench-noop", connection=stack.redis)
    for _ in range(jobs):
        queue.enqueue("bench.jobs.noop")
    started = time.process_time()
    SimpleWorker([queue], connection=stack.redis).work(burst=True, with_scheduler=False, logging_level="WARNING")
    return (time.process_time() - started) / jobs * 1000


class _WriteLock:
    """How long each transaction holds SQLite's one write lock: from its first write statement
    (the driver begins the transaction there, reads before it take no lock) to its commit or
    rollback."""

    def __init__(self):
        self.since: dict = {}
        self.held: list[float] = []

    def listeners(self, engine) -> list[tuple]:
        return [(engine, "before_cursor_execute", self._statement), (engine, "commit", self._end),
                (engine, "rollback", self._end)]

    def _statement(self, conn, _cursor, statement: str, *_args) -> None:
        if conn not in self.since and statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.since[conn] = time.perf_counter()

    def _end(self, conn) -> None:
        if conn in self.since:
            self.held.append(time.perf_counter() - self.since.pop(conn))


def _library(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    here = str(Path(__file__).resolve().parent.parent) + "/"
    if path.startswith(here):
        return "this repository: " + path[len(here):].split("/")[0]
    return "built-ins" if path.startswith(("~", "<")) else "standard library"


def main() -> None:
    args = sys.argv[1:]
    mode = args.pop(0) if args and not args[0].isdigit() else "hops"
    count = int(args[0]) if args else 300
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    stack = Stack(work)
    out = _quiet_stderr(work)
    postgres = os.environ.get("BENCH_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    url, drop = (_postgres_schema(postgres) if mode == "final" and postgres != "skip"
                 else (f"sqlite:///{work / 'var' / 'gateway.db'}", None))
    try:
        stack.start_redis()
        stack.start_fake_at()
        env = stack.env(url, work / "var")
        stack.prepare_database(env)
        os.environ.update(env)
        if mode.startswith("replay-"):
            browse(stack, count, out, only=mode.removeprefix("replay-"))
        else:
            {"hops": hops, "browse": browse, "worker": worker, "sms": sms, "final": final}[mode](stack, count, out)
    finally:
        stack.stop_all()
        if drop is not None:
            drop()
        shutil.rmtree(work, ignore_errors=True)  # the database, Redis's file and the app's log


if __name__ == "__main__":
    main()
