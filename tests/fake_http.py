"""What every local fake of a provider's send API shares: a threaded WSGI server on a free
loopback port, the messages it accepted, waiting for them, and failures injected on demand.
A fake adds its own `_dispatch` (the provider's answers) and `base_url` path."""
from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


class LocalFake:
    path_prefix = ""

    def __init__(self):
        self._cond = threading.Condition()
        self._messages: list[dict] = []
        self._fail: list[int] = []
        self._server = self._thread = None

    def __enter__(self):
        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{self.path_prefix}"

    @property
    def messages(self) -> list[dict]:
        with self._cond:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self._cond:
            self._cond.wait_for(lambda: len(self._messages) >= count, timeout)
            return list(self._messages)

    def fail_next(self, n: int, http_status: int = 500) -> None:
        with self._cond:
            self._fail = [http_status] * n

    def _accept(self, message: dict) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def _injected_failure(self):
        """The HTTP status of a failure asked for with `fail_next`, or None."""
        with self._cond:
            return self._fail.pop(0) if self._fail else None

    def __call__(self, environ, start_response):
        return self._dispatch(Request(environ))(environ, start_response)

    def _dispatch(self, request: Request):
        raise NotImplementedError
