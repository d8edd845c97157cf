"""The processes a benchmark runs, each on a free loopback port, each in its own process group
so that stopping one stops its children (server workers) and nothing else."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

import redis

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PEER_SOURCE = ROOT / "bench" / "peer"  # the ussd-menu-builder peer app; npm installs it under var/
WEBHOOK_TOKEN = "bench-token"
AT_API_KEY = "bench-api-key"
STOP_GRACE_SECONDS = 10
PEER_DIR = ROOT / "var" / "bench" / "peer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, redis.RedisError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:g}s")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process and its live descendants have used so far (a server's
    workers, RQ's scheduler); 0 for a process that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS + sum(cpu_seconds(c) for c in children(pid))


def children(pid: int) -> list[int]:
    """Direct children of a process (a server's workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class Process:
    def __init__(self, name: str, argv: list[str], log: Path, env: Optional[dict] = None, cwd: Path = ROOT):
        self.name, self.log = name, log
        self.out = open(log, "ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


def server_argv(server: str, app: str, port: int) -> list[str]:
    """The WSGI server command lines compared (bin/run uses the chosen one)."""
    if server.startswith("gunicorn-gthread"):
        return [str(VENV_BIN / "gunicorn"), "--workers", "2", "--threads", "4", "--worker-class", "gthread",
                "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", f"{app}()"]
    if server == "gunicorn-sync":
        return [str(VENV_BIN / "gunicorn"), "--workers", "3", "--bind", f"127.0.0.1:{port}",
                "--access-logfile", "/dev/null", f"{app}()"]
    if server.startswith("granian"):
        return granian_argv(app, port, *_granian_shape(server))
    raise ValueError(f"unknown server {server}")


def _granian_shape(server: str) -> tuple[str, str]:
    """(workers, threads) of `granian`, or of `granian-<workers>x<threads>` to try others."""
    workers, _, threads = (server.partition("-")[2] or "2x1").partition("x")
    return workers, threads


def listeners_expected(server: str) -> int:
    """Listening sockets a server has once all its workers serve: granian's workers each bind
    the port (SO_REUSEPORT); gunicorn's share their master's one."""
    return int(_granian_shape(server)[0]) if server.startswith("granian") else 1


def listening_sockets(port: int) -> int:
    """Sockets listening on a local TCP port, from the kernel's tables."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        # fields: sl, local address:port (hex), remote, state (0A is LISTEN), ...
        count += sum(1 for fields in map(str.split, rows) if fields[1].endswith(f":{port:04X}") and fields[3] == "0A")
    return count


def granian_argv(factory: str, port: int, workers: str, threads: str) -> list[str]:
    return [str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", workers, "--blocking-threads", threads,
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
            "--factory", factory]


class Stack:
    """Redis, the fake Africa's Talking, the web server, the RQ workers: `make run`'s parts."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: list[Process] = []
        self.redis_port = free_port()
        self.at_port = free_port()
        self.alerts_file = workdir / "alerts.log"
        self.redis: Optional[redis.Redis] = None
        self.web: Optional[Process] = None
        self.web_port = 0
        self.workers: list[Process] = []

    def start(self, name: str, argv: list[str], env: Optional[dict] = None, cwd: Path = ROOT) -> Process:
        proc = Process(name, argv, self.logs / f"{name}.log", env, cwd)
        self.processes.append(proc)
        return proc

    def stop(self, proc: Optional[Process]) -> None:
        if proc is not None:
            proc.stop()
            if proc in self.processes:
                self.processes.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.processes)):  # workers before Redis
            self.stop(proc)

    # -- the parts --------------------------------------------------------------------------
    def start_redis(self) -> None:
        data = self.workdir / "redis"
        data.mkdir(exist_ok=True)
        # as bin/run starts it: append-only file, fsync every second
        self.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port),
                             "--dir", str(data), "--appendonly", "yes", "--save", "", "--loglevel", "warning"])
        self.redis = redis.Redis(port=self.redis_port)
        wait_for(self.redis.ping, 10, "redis-server")

    def start_fake_at(self) -> None:
        self.start("fake-at", granian_argv("bench.fake_at_server:app", self.at_port, "1", "4"),
                   {**os.environ, "FAKE_AT_API_KEY": AT_API_KEY, "FAKE_AT_OUT": str(self.alerts_file)})
        wait_for(lambda: socket.create_connection(("127.0.0.1", self.at_port), 1).close() is None, 10, "fake AT")

    def env(self, database_url: str, var_dir: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRANIAN_", "LIMIT_", "DATABASE_"))}
        env.update(PATH=f"{VENV_BIN}:{env.get('PATH', '')}", GATEWAY_ENV="development", VAR_DIR=str(var_dir),
                   REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0", DATABASE_URL=database_url,
                   SMS_PROVIDER="africastalking", AT_USERNAME="sandbox", AT_API_KEY=AT_API_KEY,
                   AT_API_URL=f"http://127.0.0.1:{self.at_port}/version1", WEBHOOK_TOKEN=WEBHOOK_TOKEN,
                   LOG_FORMAT="json",  # as in production
                   # every virtual user has its own number, and the limits are raised as well: the
                   # benchmark measures speed, tests/test_security.py the limits
                   LIMIT_USSD_SESSIONS_PER_HOUR="1000000000", LIMIT_REPORTS_PER_DAY="1000000000",
                   LIMIT_SMS_PER_HOUR="1000000000", LIMIT_SMS_SENT_PER_MINUTE="1000000000")
        return env

    def prepare_database(self, env: dict) -> None:
        """Schema and the demo duty roster (alerts need somebody to go to), as bin/run does."""
        flask = str(VENV_BIN / "flask")
        for args in (["db-upgrade"], ["responders", "demo"]):
            subprocess.run([flask, "--app", "gateway", *args], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start_web(self, server: str, app: str, env: dict, name: str = "web") -> str:
        self.web_port = free_port()
        self.web = self.start(name, server_argv(server, app, self.web_port), env)
        base = f"http://127.0.0.1:{self.web_port}"

        def up() -> bool:
            if not self.web.alive():
                raise RuntimeError(f"{name} exited: see {self.web.log}")
            request = urllib.request.Request(f"{base}/at/ussd?token={WEBHOOK_TOKEN}", method="POST",
                                             data=b"sessionId=warmup&phoneNumber=%2B6281200000000&text=")
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        wait_for(up, 60, name)
        # A granian worker binds the port only once its app is loaded. Until the last one has,
        # every new connection goes to the others, and a keep-alive one stays there: in one run
        # of six, wrk's 32 connections all landed on one worker (4,291 hops/s against ~6,200).
        wait_for(lambda: listening_sockets(self.web_port) >= listeners_expected(server), 60, f"{name}'s workers")
        return base

    def stop_web(self) -> None:
        self.stop(self.web)
        self.web = None

    def start_workers(self, count: int, env: dict) -> None:
        for n in range(count):
            self.workers.append(self.start(f"worker-{n}", [sys.executable, "-m", "workers"], env))
        wait_for(lambda: len(self.redis.smembers("rq:workers")) >= count, 30, "RQ workers")

    def stop_workers(self) -> None:
        for proc in self.workers:
            self.stop(proc)
        self.workers = []
        self.redis.delete("rq:workers")

    # -- what is measured besides latency ---------------------------------------------------
    def web_rss_mb(self) -> float:
        """The largest server worker's resident memory (the master forks or spawns them)."""
        if self.web is None:
            return 0.0
        return max((rss_mb(pid) for pid in children(self.web.pid)), default=rss_mb(self.web.pid))

    def worker_rss_mb(self) -> float:
        return max((rss_mb(p.pid) for p in self.workers), default=0.0)

    def cpu_by_part(self) -> dict[str, float]:
        """CPU seconds used so far by each part of the stack: where a scenario's cores went."""
        parts = {"web": [self.web] if self.web else [], "workers": self.workers,
                 "redis": [p for p in self.processes if p.name == "redis"],
                 "fake AT": [p for p in self.processes if p.name == "fake-at"]}
        return {part: sum(cpu_seconds(p.pid) for p in procs) for part, procs in parts.items()}

    def queue_depth(self, queue: str = "default") -> int:
        """Jobs waiting or running (not those scheduled for later: acknowledgement deadlines),
        counting one a worker has taken from the queue but not yet registered as started."""
        return (self.redis.llen(f"rq:queue:{queue}") + self.redis.llen(f"rq:queue:{queue}:intermediate")
                + self.redis.zcard(f"rq:wip:{queue}"))


def install_peer() -> Optional[Path]:
    """ussd-menu-builder installed with npm under var/bench/peer (ignored by git, kept between
    runs so a second run installs nothing), never into the tree."""
    if shutil.which("npm") is None or shutil.which("node") is None or not PEER_SOURCE.is_dir():
        return None
    target = PEER_DIR
    target.mkdir(parents=True, exist_ok=True)
    for source in PEER_SOURCE.iterdir():  # copied, so npm writes nothing into the tree
        if source.is_file():
            (target / source.name).unlink(missing_ok=True)
            shutil.copyfile(source, target / source.name)
    result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=target,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    if result.returncode != 0:
        print(f"npm install failed: {result.stderr.decode(errors='replace')[-400:]}", file=sys.stderr)
        return None
    return target
