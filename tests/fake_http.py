"""What every local fake of a provider's send API shares: a threaded WSGI server on a free
loopback port (or a given one, for a fake run as its own process), the messages it accepted,
waiting for them, and failures injected on demand. A fake adds its own `_dispatch` (the
provider's answers) and `base_url` path."""
from __future__ import annotations

import re
import threading

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request


class _QuietHandler(WSGIRequestHandler):
    """No per-request access log: it would flood test output."""

    def log_request(self, code="-", size="-"):
        pass


class LocalFake:
    path_prefix = ""

    def __init__(self, port: int = 0):
        self.port = port
        self._cond = threading.Condition()
        self._messages: list[dict] = []
        self._fail: list[int] = []
        self._server = self._thread = None

    def start(self):
        if self._server is None:
            self._server = make_server("127.0.0.1", self.port, self, threaded=True, request_handler=_QuietHandler)
            self.port = self._server.server_port
            # a short poll interval: stop() waits for one poll
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=type(self).__name__, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path_prefix}"

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


class BearerJsonApi(LocalFake):
    """A send API that takes one JSON POST per message at a path naming the account, with a
    Bearer token (8x8, WhatsApp). The fake says how it refuses each case in REFUSALS (its own
    error codes and texts, read from its documentation) and what it does with a body in `_send`."""

    path: re.Pattern       # the send path, with a group `account`
    REFUSALS: dict[str, tuple[int, str, int]]  # route, failure, token, account -> (code, message, HTTP status)

    def __init__(self, token: str, account: str):
        super().__init__()
        self.token, self.account = token, account

    def _error(self, code: int, message: str, status: int):
        raise NotImplementedError

    def _send(self, body: dict):
        raise NotImplementedError

    def _refuse(self, case: str, status: int = 0):
        code, message, documented = self.REFUSALS[case]
        return self._error(code, message, status or documented)

    def _dispatch(self, request: Request):
        match = self.path.match(request.path)
        if request.method != "POST" or not match:
            return self._refuse("route")
        if status := self._injected_failure():
            return self._refuse("failure", status)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._refuse("token")
        if match["account"] != self.account:
            return self._refuse("account")
        return self._send(request.get_json(silent=True) or {})
