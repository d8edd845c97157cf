"""A local fake of Africa's Talking's SMS sending API (``POST /version1/messaging``).

Why: the gateway sends SMS through the real ``africastalking`` SDK, and the
tests, chaos runs and benchmarks need something that SDK can talk to without
network access, credit or rate limits, and that can be told to misbehave
(outages, blacklisted numbers, slow answers). The wire format follows
Africa's Talking's SMS API documentation; the details the SDK depends on are:

* success is HTTP 201 with ``Content-Type`` exactly ``application/json``
  (the SDK 2.0.3 returns the raw text instead of a dict for any other value);
* per-recipient failures are still HTTP 201, reported inside ``Recipients``;
* any non-2xx answer makes the SDK raise ``AfricasTalkingException(body)``.

Use it in tests::

    with FakeAfricasTalking() as fake:
        svc = SMSService("sandbox", fake.api_key)
        svc._baseUrl = fake.base_url
        svc.send("hello", ["+6281234567890"])
        assert fake.messages[0]["to"] == "+6281234567890"

or from the shell (prints each accepted message as one JSON line to stdout)::

    python tests/fake_at.py --port 8099
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import signal
import sys
import threading
import uuid
from typing import Callable

from fake_http import LocalFake
from werkzeug.wrappers import Request, Response

# Per-recipient statusCode -> status word, as in AT's documentation.
STATUS_WORDS = {
    100: "Processed",
    101: "Sent",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
ACCEPTED_CODES = (100, 101, 102)
PRICE_PER_PART = 0.8  # KES, the figure seen in AT's sample answers
_E164 = re.compile(r"^\+\d{4,15}$")


def _text(body: str, status: int) -> Response:
    # AT's errors are plain text; the 401 one is exactly this content type.
    return Response(body, status=status, content_type="text/plain; charset=UTF-8")


def _parts(message: str) -> int:
    """SMS parts for a GSM-7 text: 160 chars alone, 153 each when split."""
    return 1 if len(message) <= 160 else math.ceil(len(message) / 153)


class FakeAfricasTalking(LocalFake):
    """In-process fake AT SMS server with thread-safe failure injection.

    Recorded state (read via properties, which return snapshots under the lock):
    ``messages`` (one dict per accepted recipient), ``rejected`` (one dict per
    per-recipient failure) and ``requests_seen`` (every POST to /messaging).
    """

    path_prefix = "/version1"  # what to put in ``SMSService._baseUrl``

    def __init__(
        self,
        api_key: str = "fake-api-key",
        port: int = 0,
        on_message: Callable[[dict], None] | None = None,
    ):
        super().__init__(port)
        self.api_key = api_key
        self.on_message = on_message
        self._stopping = threading.Event()  # wakes hung requests on stop()
        self.reset()

    def start(self) -> "FakeAfricasTalking":
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    @property
    def rejected(self) -> list[dict]:
        with self._cond:
            return list(self._rejected)

    @property
    def requests_seen(self) -> int:
        with self._cond:
            return self._requests_seen

    # ---- failure injection -----------------------------------------------

    def reset(self) -> None:
        """Forget recorded traffic and every injected failure."""
        with self._cond:
            self._messages: list[dict] = []
            self._rejected: list[dict] = []
            self._requests_seen = 0
            self._fail_left = 0
            self._fail_status = 500
            self._hang_left = 0
            self._hang_seconds = 0.0
            self._ratio = 0.0
            self._ratio_status = 500
            self._ratio_hang_share, self._ratio_hang_seconds = 0.0, 0.0
            self._rng = random.Random()
            self._recipient_codes: dict[str, int] = {}

    def fail_next(self, n: int, http_status: int = 500) -> None:
        """The next ``n`` requests get ``http_status`` (text body), nothing recorded."""
        with self._cond:
            self._fail_left, self._fail_status = n, http_status

    def recipient_status(self, number: str, code: int) -> None:
        """Every send to ``number`` reports per-recipient ``code`` (still HTTP 201)."""
        if code not in STATUS_WORDS:
            raise ValueError(f"unknown AT statusCode {code}")
        with self._cond:
            self._recipient_codes[number] = code

    def hang_next(self, n: int, seconds: float) -> None:
        """The next ``n`` requests sleep ``seconds`` first, to exercise client timeouts.

        After the sleep the request is processed normally, i.e. the message
        IS recorded even though the client gave up, as a real slow AT would.
        """
        with self._cond:
            self._hang_left, self._hang_seconds = n, seconds

    def fail_ratio(self, p: float, seed: int | None = None, http_status: int = 500,
                   hang_share: float = 0.0, hang_seconds: float = 0.0) -> None:
        """A random fraction ``p`` of requests misbehave (chaos tests): ``hang_share`` of them
        are slow by ``hang_seconds`` and then processed normally, the rest fail with ``http_status``."""
        with self._cond:
            self._ratio, self._ratio_status = p, http_status
            self._ratio_hang_share, self._ratio_hang_seconds = hang_share, hang_seconds
            self._rng = random.Random(seed)

    # ---- WSGI app --------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        if request.path != "/version1/messaging":
            return _text("Not Found", 404)
        if request.method != "POST":
            return _text("Method Not Allowed", 405)

        with self._cond:
            self._requests_seen += 1
            hang = 0.0
            if self._hang_left > 0:
                self._hang_left -= 1
                hang = self._hang_seconds
            fail = None
            if self._fail_left > 0:
                self._fail_left -= 1
                fail = self._fail_status
            elif self._ratio > 0 and self._rng.random() < self._ratio:
                if self._rng.random() < self._ratio_hang_share:
                    hang = max(hang, self._ratio_hang_seconds)
                else:
                    fail = self._ratio_status

        if hang and self._stopping.wait(hang):
            return _text("Service Unavailable", 503)  # shutting down: give up
        if fail is not None:
            return _text(f"Injected failure (HTTP {fail})", fail)
        if request.headers.get("apiKey") != self.api_key:
            return _text("The supplied authentication is invalid", 401)

        form = request.form
        for field in ("username", "to", "message"):
            if not form.get(field):
                return _text(f"Request is missing required form field '{field}'", 400)
        return self._send(form)

    def _send(self, form) -> Response:
        message, sender = form["message"], form.get("from")
        parts = _parts(message)
        ok_code = 102 if form.get("enqueue") == "1" else 101
        numbers = [n.strip() for n in form["to"].split(",") if n.strip()]
        recipients, accepted = [], []

        with self._cond:
            for number in numbers:
                if _E164.match(number):
                    code = self._recipient_codes.get(number, ok_code)
                else:
                    code = 403
                if code in ACCEPTED_CODES:
                    msg_id = "ATXid_" + uuid.uuid4().hex
                    recipients.append({
                        "cost": f"KES {PRICE_PER_PART * parts:.4f}",
                        "messageId": msg_id,
                        "number": number,
                        "status": "Success",  # what AT says for 100-102
                        "statusCode": code,
                    })
                    accepted.append({
                        "to": number,
                        "message": message,
                        "from": sender,
                        "username": form["username"],
                        "message_id": msg_id,
                        "status_code": code,
                    })
                else:
                    recipients.append({
                        "cost": "0",
                        "messageId": "None",
                        "number": number,
                        "status": STATUS_WORDS[code],
                        "statusCode": code,
                    })
                    self._rejected.append({
                        "to": number,
                        "message": message,
                        "from": sender,
                        "username": form["username"],
                        "status_code": code,
                    })
            self._messages.extend(accepted)
            self._cond.notify_all()

        for entry in accepted:
            if self.on_message is not None:
                self.on_message(entry)

        total = f"KES {PRICE_PER_PART * parts * len(accepted):.4f}" if accepted else "0"
        summary = f"Sent to {len(accepted)}/{len(numbers)} Total Cost: {total}"
        if accepted:
            summary += f" Message parts: {parts}"
        body = {"SMSMessageData": {"Message": summary, "Recipients": recipients}}
        # content_type (not mimetype) so werkzeug adds no "; charset=utf-8".
        return Response(json.dumps(body), status=201, content_type="application/json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Africa's Talking SMS API")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--api-key", default="fake-api-key")
    args = parser.parse_args(argv)

    fake = FakeAfricasTalking(
        api_key=args.api_key,
        port=args.port,
        on_message=lambda m: print(json.dumps(m), flush=True),
    )
    fake.start()
    # Banner on stderr so stdout carries only message lines.
    print(f"fake AT listening on {fake.base_url}", file=sys.stderr, flush=True)
    # Stop cleanly on Ctrl-C or `kill` (benchmarks run it in the background,
    # where SIGINT may be ignored, so handle SIGTERM as well).
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
