"""`make run` started as a terminal would, on free ports with its own var/ directory, for
tests that need the whole stack (tests/test_run.py, tests/test_simulate.py)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis
import requests
from conftest import ENV_NAMES, ROOT, free_port, wait_until


class Stack:
    """`make run` in its own process group, as a terminal would start it."""

    def __init__(self, tmp_path: Path, extra_env: dict):
        self.port, self.redis_port = free_port(), free_port()
        self.var_dir = tmp_path / "var"
        self.output_path = tmp_path / "make-run.log"
        env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith(("MAKE", "MFLAGS"))}
        env.update(PORT=str(self.port), VAR_DIR=str(self.var_dir), WEB_WORKERS="1",
                   REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0", **extra_env)
        self.output = open(self.output_path, "wb")
        self.proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                                     stdout=self.output, stderr=subprocess.STDOUT, start_new_session=True)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self):
        def ready():
            assert self.proc.poll() is None, self.log()
            try:
                return requests.get(f"{self.base_url}/readyz", timeout=5).status_code == 200
            except requests.RequestException:
                return False
        wait_until(ready, timeout=60, interval=0.2)
        wait_until(lambda: "is running on" in self.log(), timeout=10)  # the banner comes after /healthz

    def log(self) -> str:
        return self.output_path.read_text(errors="replace")

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(30)

    def stop(self):
        """After a failed test: kill what is left, in every process group of its session and the
        redis-server in its own session."""
        for pid in session_processes(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        if not port_closed(self.redis_port):
            with redis.Redis(port=self.redis_port) as client:
                try:
                    client.shutdown(nosave=True)
                except redis.ConnectionError:
                    pass
        self.output.close()


@pytest.fixture(name="stack")
def stack_fixture(tmp_path):
    """`stack(**env)` starts one; every one started is stopped at the end of the test.
    A test module uses it by importing `stack_fixture`."""
    stacks = []

    def start(**extra_env) -> Stack:
        s = Stack(tmp_path, extra_env)
        stacks.append(s)
        s.wait_ready()
        return s

    yield start
    for s in stacks:
        s.stop()


def session_processes(sid: int) -> dict[int, str]:
    """Pid and command line of every live process in session `sid`: a terminal's Ctrl-C must
    leave nothing behind, whichever process group (granian's workers, RQ's scheduler) it is in."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):  # it exited while we looked
            continue
    return found


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0
