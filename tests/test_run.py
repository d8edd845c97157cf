"""`make run` as a newcomer runs it: the whole stack (its own redis-server, granian, an RQ
worker) in the foreground, a dialled session over real HTTP, and Ctrl-C stopping everything.

The second test runs the same stack against the fake Africa's Talking API and then searches
everything the service wrote (console output, the SQLite file, the Redis append-only file and
live keys, RQ job payloads) for the reporter's number, an SMS report's words and the API key:
none may be in clear.

The last two start `make run` as a newcomer does, on a terminal (Ctrl-C typed) and through a pipe
(`make run | cat`, cat gone): each must stop all it started and exit 0."""
from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import subprocess
import termios
import threading
import time
import zlib
from pathlib import Path

import pytest
import redis
import requests
from conftest import ENV_NAMES, ROOT, free_port, wait_until
from phone import Phone, http_transport
from stack import Stack, port_closed, session_processes, stack_fixture  # noqa: F401  (the `stack` fixture)

pytestmark = pytest.mark.slow

REPORTER = "+6281298765432"
SECRET_WORDS = "penampungan rahasia Bu Siti"  # an SMS report's own words: stored encrypted, never logged
# report: job fraud, woman, OKI (item 10, on the second page), nobody in danger, may contact me, send
REPORT_KEYS = ["1", "1", "1", "98", "10", "2", "1", "1"]
# the national significant number, also when written with spaces, dots or dashes
REPORTER_PATTERN = re.compile(rb"8[ .-]?1[ .-]?2[ .-]?9[ .-]?8[ .-]?7[ .-]?6[ .-]?5[ .-]?4[ .-]?3[ .-]?2")


def _assert_all_stopped(s: Stack):
    try:
        wait_until(lambda: not session_processes(s.proc.pid), timeout=15)
    except TimeoutError:
        pytest.fail(f"still running after Ctrl-C: {session_processes(s.proc.pid)}\n{s.log()}")
    assert port_closed(s.port) and port_closed(s.redis_port)


def _dial_report(stack: Stack) -> str:
    phone = Phone(http_transport(stack.base_url), number=REPORTER)
    screens = phone.run(REPORT_KEYS)
    assert all(len(s) <= 182 for s in screens)
    assert screens[-1].startswith("END ") and "Kode: " in screens[-1], screens[-1]
    return screens[-1].split("Kode: ")[1][:6]


def test_a_killed_web_process_is_started_again(stack):
    """An out-of-memory kill of the web process must not stop the hotline: granian starts it
    again (without --respawn-failed-workers it exited, and `make run` stopped everything)."""
    s = stack()
    procs = session_processes(s.proc.pid)
    granian = {pid for pid, cmd in procs.items() if "granian" in cmd}
    web = next(pid for pid in granian
               if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) in granian)
    os.kill(web, signal.SIGKILL)

    def answers():
        assert s.proc.poll() is None, s.log()
        try:
            return requests.get(f"{s.base_url}/healthz", timeout=2).status_code == 200 and web not in \
                session_processes(s.proc.pid)
        except requests.RequestException:
            return False
    wait_until(answers, timeout=60, interval=0.2)
    assert "Unexpected exit" in s.log()
    _dial_report(s)


def test_make_run_serves_a_full_session_and_ctrl_c_stops_everything(stack):
    s = stack()
    assert requests.get(f"{s.base_url}/healthz", timeout=2).json() == {"status": "ok"}
    assert f"{s.base_url}/at/ussd" in s.log()

    ref = _dial_report(s)
    sink = s.var_dir / "sms-sink.log"
    wait_until(lambda: sink.exists() and ref in sink.read_text(), timeout=30)
    alerts = [a for a in map(json.loads, sink.read_text().splitlines()) if ref in a["body"]]  # not the demo case's
    assert len(alerts) == 1 and alerts[0]["body"].startswith(f"TPPO {ref}: Penipuan kerja")
    assert f"[sms-sink] to {alerts[0]['to']}" in s.log()  # printed where the operator looks

    assert s.interrupt() != 0
    _assert_all_stopped(s)


def test_ctrl_c_kills_a_stuck_worker_and_what_it_started_after_the_grace_period(stack):
    """RQ's signal handler can hang on Redis; the worker and its scheduler process must not
    outlive `make run`. Hung here twice over: both are stopped (SIGSTOP) and Redis is frozen,
    because bash's `kill` wakes a stopped job it knows about with SIGCONT, and a woken worker's
    handler then waits on the frozen Redis, as a hung one does."""
    s = stack(STOP_GRACE_SECONDS="1")
    def worker_processes():  # the worker and RQ's scheduler, forked from it
        found = {pid: cmd for pid, cmd in session_processes(s.proc.pid).items() if "-m workers" in cmd}
        return found if len(found) >= 2 else None
    worker = wait_until(worker_processes, timeout=15)
    with redis.Redis(port=s.redis_port) as client:
        redis_pid = client.info("server")["process_id"]
    os.kill(redis_pid, signal.SIGSTOP)
    try:
        for pid in worker:
            os.kill(pid, signal.SIGSTOP)
        os.killpg(s.proc.pid, signal.SIGINT)  # Ctrl-C
        wait_until(lambda: "killed after 1s" in s.log(), timeout=15)
    finally:
        os.kill(redis_pid, signal.SIGCONT)  # make run stops Redis last, once the rest is gone
    assert s.proc.wait(30) != 0
    assert not set(worker) & set(session_processes(s.proc.pid)), s.log()
    _assert_all_stopped(s)


def _redis_values(client: redis.Redis):
    """Every stored value, with RQ's zlib-compressed job payloads opened."""
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key)]
        elif kind == b"hash":
            values = list(client.hgetall(key).values())
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        for value in values:
            yield key, value
            try:
                yield key, zlib.decompress(value)
            except zlib.error:
                pass


def test_reporter_number_and_api_key_never_stored_or_logged_in_clear(stack, fake_at):
    s = stack(AT_USERNAME="sandbox", AT_API_KEY=fake_at.api_key, AT_API_URL=fake_at.base_url)
    ref = _dial_report(s)
    alert = wait_until(lambda: [m for m in fake_at.messages if ref in m["message"]], timeout=30)[0]
    assert ref in alert["message"] and REPORTER in alert["message"]  # consent given: only the responder sees it
    requests.post(f"{s.base_url}/at/sms", data={"from": REPORTER, "to": "12345", "id": "ATSMS_RUN_1",
                                                 "text": f"LAPOR {SECRET_WORDS} di Sekayu"}, timeout=5)
    wait_until(lambda: any(SECRET_WORDS in m["message"] for m in fake_at.messages), timeout=30)  # its alert
    with redis.Redis(port=s.redis_port) as client:
        stored = list(_redis_values(client))
        assert any(key.startswith(b"rq:job:") for key, _ in stored)  # the search did reach job payloads
    assert s.interrupt() != 0

    places = {"console output of make run": s.output_path.read_bytes()}
    places.update({f"redis {key.decode()}": value for key, value in stored})
    for path in s.var_dir.rglob("*"):
        if path.is_file() and path.name != "data.key":
            places[str(path.relative_to(s.var_dir))] = path.read_bytes()
    # the append-only file holds every write in plain RESP (no rewrite, so no compressed RDB preamble)
    assert "gateway.db" in places and any(name.endswith(".incr.aof") for name in places)
    secrets = (fake_at.api_key.encode(), SECRET_WORDS.encode())
    leaks = [name for name, data in places.items() if REPORTER_PATTERN.search(data) or any(s in data for s in secrets)]
    assert leaks == []


def _make_run(tmp_path, **popen) -> tuple[subprocess.Popen, int, int]:
    """`make run` in a session of its own, on free ports and its own VAR_DIR."""
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith(("MAKE", "MFLAGS"))}
    env.update(PORT=str(port), VAR_DIR=str(tmp_path / "var"), WEB_WORKERS="1",
               REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, start_new_session=True,
                            **popen)
    return proc, port, redis_port


def _assert_nothing_left(proc: subprocess.Popen, port: int, redis_port: int, output) -> None:
    try:
        wait_until(lambda: not session_processes(proc.pid) and port_closed(port) and port_closed(redis_port),
                   timeout=15)
    except TimeoutError:
        for pid in session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)
        pytest.fail(f"left running: {session_processes(proc.pid)}\n{output()}")


def _sign_in(base_url: str, login: str, password: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{base_url}/console/sign-in", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    browser.post(f"{base_url}/console/sign-in", timeout=5,
                 data={"csrf_token": token, "login": login, "password": password})
    return browser


def test_ctrl_c_on_a_terminal_stops_everything_and_make_run_exits_0(tmp_path):
    """Typed Ctrl-C reaches the terminal's whole foreground group, make included: make must
    not die of it (`Error 130`) but wait for the clean stop. On the way, the banner's demo
    accounts sign in to the console and see the demo case."""
    master, slave = os.openpty()
    proc, port, redis_port = _make_run(tmp_path, stdin=slave, stdout=slave, stderr=slave,
                                       preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    output = bytearray()

    def read():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                return
            if not data:
                return
            output.extend(data)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    text = lambda: output.decode(errors="replace")  # noqa: E731
    try:
        wait_until(lambda: "Outgoing SMS" in text(), timeout=120, interval=0.2)
        ref = re.search(r"Demo case: ([A-Z0-9]{6})", text()).group(1)
        logins = dict(re.findall(r"^ +(demo-[\w-]+) +password (\S+)", text(), re.M))
        assert set(logins) == {"demo-coordinator", "demo-oki", "demo-operator"}, text()
        base_url = f"http://127.0.0.1:{port}"
        for login in ("demo-coordinator", "demo-oki"):
            assert ref in _sign_in(base_url, login, logins[login]).get(f"{base_url}/console/cases", timeout=5).text
        operator = _sign_in(base_url, "demo-operator", logins["demo-operator"])
        duty = operator.get(f"{base_url}/console/responders", timeout=5)
        assert duty.status_code == 200 and "Nomor piket" in duty.text
        os.write(master, b"\x03")  # Ctrl-C
        assert proc.wait(60) == 0, text()
        assert "Error" not in text()
        _assert_nothing_left(proc, port, redis_port, text)
    finally:
        if proc.poll() is None:
            for pid in session_processes(proc.pid):
                os.kill(pid, signal.SIGKILL)
        os.close(master)


def test_closing_the_output_pipe_stops_everything_and_make_run_exits_0(tmp_path):
    """`make run | cat`, and cat is killed: nothing must keep running with nowhere to write, and
    no write into the closed pipe may cut the stop short."""
    errors = open(tmp_path / "stderr.log", "wb")
    proc, port, redis_port = _make_run(tmp_path, stdout=subprocess.PIPE, stderr=errors)
    seen = bytearray()
    log = lambda: seen.decode(errors="replace") + (tmp_path / "stderr.log").read_text(errors="replace")  # noqa: E731
    try:
        deadline = time.monotonic() + 120
        while b"Outgoing SMS" not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, log()
            if select.select([proc.stdout], [], [], 1)[0]:
                seen.extend(os.read(proc.stdout.fileno(), 65536))
        proc.stdout.close()  # cat is gone
        assert proc.wait(60) == 0, log()
        _assert_nothing_left(proc, port, redis_port, log)
    finally:
        if proc.poll() is None:
            for pid in session_processes(proc.pid):
                os.kill(pid, signal.SIGKILL)
        errors.close()
