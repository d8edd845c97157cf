"""Profile the USSD request path in one process: `python -m bench.profile [sessions]`.

A private redis-server and a SQLite file, the real app through Flask's test client (no HTTP
server, so only the gateway's own work shows), full report sessions, pyinstrument's tree
printed. This is how the hot spots fixed for issue 6 were found (BENCHMARKS.md)."""
from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from pyinstrument import Profiler

from .loads import REPORT_KEYS
from .stack import WEBHOOK_TOKEN, Stack


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    stack = Stack(work)
    try:
        stack.start_redis()
        env = stack.env(f"sqlite:///{work / 'var' / 'gateway.db'}", work / "var")
        stack.prepare_database(env)
        os.environ.update(env)
        from gateway import create_app
        app = create_app().wsgi_app  # called as the server calls it: no test client in the profile

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

        spent = {"hops": 0.0, "final": 0.0}

        def session(n: int) -> None:
            for i in range(len(REPORT_KEYS) + 1):
                started = time.perf_counter()
                post({"sessionId": f"p-{n}", "phoneNumber": f"+62813{n:08d}", "serviceCode": "*123#",
                      "text": "*".join(REPORT_KEYS[:i])})
                spent["final" if i == len(REPORT_KEYS) else "hops"] += time.perf_counter() - started

        for n in range(20):  # warm up: connections opened, caches filled
            session(1_000_000 + n)
        spent.update(hops=0.0, final=0.0)
        for n in range(sessions):
            session(2_000_000 + n)
        print(f"{sessions} sessions, not profiled: {spent['hops'] / sessions / len(REPORT_KEYS) * 1000:.2f} ms per "
              f"hop, {spent['final'] / sessions * 1000:.2f} ms per final hop (the report filed), in-process")
        profiler = Profiler(interval=0.0005)
        with profiler:
            for n in range(sessions):
                session(n)
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    finally:
        stack.stop_all()


if __name__ == "__main__":
    main()
