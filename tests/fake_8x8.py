"""A local fake of 8x8's SMS send API (`POST /api/v1/subaccounts/{id}/messages`), so the
8x8 provider and a worker using it can be tested without network, credit or an account.

Answers as 8x8 documents them (developer.8x8.com, "Send SMS"): 200 with `umid` and
`status.code` QUEUED; a number set with `reject_number` gets 400 with error code 1002; a wrong
Bearer key gets 401 with code 1200; `fail_next` answers the next requests with an HTTP error."""
from __future__ import annotations

import json
import re
import uuid

from fake_http import BearerJsonApi
from werkzeug.wrappers import Response


def _json(body: dict, status: int) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _error(code: int, message: str, status: int) -> Response:
    return _json({"code": code, "message": message, "errorId": str(uuid.uuid4()),
                  "timestamp": "2026-11-28T10:15:00.00Z"}, status)


class Fake8x8(BearerJsonApi):
    path = re.compile(r"^/api/v1/subaccounts/(?P<account>[A-Za-z0-9\-._&]{3,50})/messages$")
    REFUSALS = {"route": (1300, "Not found", 404), "failure": (2000, "Injected failure", 500),
                "token": (1200, "Request was not authenticated properly", 401),
                "account": (1001, "Provided subAccountId doesn't belongs to your account", 400)}

    _error = staticmethod(_error)

    def __init__(self, api_key: str = "fake-8x8-key", subaccount_id: str = "tppo-sumsel"):
        super().__init__(api_key, subaccount_id)
        self.api_key, self.subaccount_id = api_key, subaccount_id
        self._rejected_numbers: set[str] = set()

    def reject_number(self, number: str) -> None:
        with self._cond:
            self._rejected_numbers.add(number)

    def _send(self, body: dict) -> Response:
        destination, text = body.get("destination"), body.get("text")
        if not destination or not re.match(r"^\+?[1-9]\d{6,14}$", destination) or destination in self._rejected_numbers:
            return _error(1002, "Invalid MSISDN format (not E.164 international number)", 400)
        if not text:
            return _error(3005, "Missed Text", 400)
        umid = str(uuid.uuid4())
        self._accept({"to": destination, "message": text, "from": body.get("source"), "umid": umid})
        return _json({"umid": umid, "destination": destination.lstrip("+"), "encoding": "GSM7",
                      "status": {"code": "QUEUED", "description": "SMS is accepted and queued for processing"}}, 200)
