"""A feature phone as Africa's Talking sees it: each press re-posts every input so far."""
from __future__ import annotations

import itertools
from typing import Callable, Optional

_counter = itertools.count(1)


class Phone:
    """`post(form) -> (status, body)` is the transport: a Flask test client or real HTTP."""

    def __init__(self, post: Callable[[dict], tuple[int, str]], number: str = "+6281234567890",
                 session_id: Optional[str] = None, service_code: str = "*384*123#"):
        self.post, self.number = post, number
        self.session_id = session_id or f"ATUid_{next(_counter):032x}"
        self.service_code, self.inputs = service_code, []

    def form(self) -> dict:
        return {"sessionId": self.session_id, "serviceCode": self.service_code, "phoneNumber": self.number,
                "networkCode": "99999", "text": "*".join(self.inputs)}

    def dial(self) -> str:
        self.inputs = []
        return self._send()

    def press(self, key: str) -> str:
        self.inputs.append(key)
        return self._send()

    def run(self, keys) -> list[str]:
        return [self.dial()] + [self.press(k) for k in keys]

    def _send(self) -> str:
        status, body = self.post(self.form())
        assert status == 200, (status, body)
        return body


def flask_transport(client, token: Optional[str] = None):
    url = "/at/ussd" + (f"?token={token}" if token else "")

    def post(form):
        response = client.post(url, data=form)
        return response.status_code, response.get_data(as_text=True)

    return post


def http_transport(base_url: str, token: Optional[str] = None):
    import requests

    url = f"{base_url}/at/ussd" + (f"?token={token}" if token else "")

    def post(form):
        response = requests.post(url, data=form, timeout=10)
        return response.status_code, response.text

    return post
