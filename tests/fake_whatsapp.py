"""A local fake of the WhatsApp Cloud API's send endpoint (`POST /{version}/{phone_number_id}/messages`),
so the WhatsApp provider and the gateway's 24-hour rule can be tested without Meta, a number or
an approved template.

Answers as Meta documents them (Cloud API, "Messages" and "Error codes"): 200 with
`messages[0].id` a wamid; a wrong Bearer token gets 401 with error code 190; a free-form text
to a number `close_window` names gets 400 with 131047 (re-engagement: more than 24 hours since
the person wrote), as the real API does; a template not in `approved` gets 404 with 132001;
`fail_next` answers the next requests with an HTTP error and code 131000."""
from __future__ import annotations

import json
import re
import uuid

from fake_http import BearerJsonApi
from werkzeug.wrappers import Response


def _error(code: int, message: str, status: int) -> Response:
    body = {"error": {"message": message, "type": "OAuthException", "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": message},
                      "fbtrace_id": uuid.uuid4().hex[:20]}}
    return Response(json.dumps(body), status=status, content_type="application/json")


class FakeWhatsApp(BearerJsonApi):
    path_prefix = "/v24.0"
    path = re.compile(r"^/v\d+\.\d+/(?P<account>\d+)/messages$")
    REFUSALS = {"route": (100, "Unsupported post request", 400), "failure": (131000, "Something went wrong", 500),
                "token": (190, "Error validating access token", 401),
                "account": (100, "Unsupported post request. Object does not exist", 400)}

    _error = staticmethod(_error)

    def __init__(self, token: str = "fake-wa-token", phone_number_id: str = "106540352242922",
                 approved: tuple[str, ...] = ("tppo_alert_v1", "kabar_kode_v1")):
        super().__init__(token, phone_number_id)
        self.phone_number_id, self.approved = phone_number_id, set(approved)
        self._closed: set[str] = set()

    def close_window(self, number: str) -> None:
        """Meta's own view that the person has not written for 24 hours: free text is refused."""
        with self._cond:
            self._closed.add(number.lstrip("+"))

    def _send(self, body: dict) -> Response:
        to, kind = body.get("to", ""), body.get("type")
        if body.get("messaging_product") != "whatsapp" or not re.match(r"^\d{7,15}$", to):
            return _error(100, "Invalid parameter", 400)
        if kind == "text":
            if to in self._closed:
                return _error(131047, "Re-engagement message", 400)
            sent = {"to": to, "type": "text", "text": body["text"]["body"]}
        elif kind == "template":
            template = body["template"]
            if template["name"] not in self.approved:
                return _error(132001, "Template name does not exist in the translation", 404)
            params = [p["text"] for c in template.get("components", []) for p in c.get("parameters", [])]
            sent = {"to": to, "type": "template", "name": template["name"],
                    "language": template["language"]["code"], "params": params}
        else:
            return _error(100, "Invalid parameter", 400)
        wamid = f"wamid.{uuid.uuid4().hex.upper()}"
        self._accept({**sent, "id": wamid})
        return Response(json.dumps({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                    "messages": [{"id": wamid}]}), status=200, content_type="application/json")
