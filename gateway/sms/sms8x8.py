"""Sending through 8x8's SMS API, the second provider: JSON over HTTPS, one request per SMS.

`POST {SMS8X8_API_URL}/api/v1/subaccounts/{SMS8X8_SUBACCOUNT_ID}/messages` with
`Authorization: Bearer {SMS8X8_API_KEY}`; the default URL is 8x8's Indonesian region. A 200
answer carries `status.code` QUEUED (accepted, `umid` is the id delivery receipts quote) or
REJECTED; an error answer carries an 8x8 error `code` (developer.8x8.com, "API Error codes").
Answers map into the closed SendResult set through the tables below; the key never leaves
the Authorization header, so no log line can carry it."""
from __future__ import annotations

import logging
from typing import Optional

import requests

from config.settings import SMS_SEND_TIMEOUT_SECONDS

from .base import REJECTED, RETRY, SENT, SendResult

# HTTP statuses of an unsent message that a later try can fix: credentials, URL or sub-account
# (an operator fixes the configuration and the alerts still open go out), timeouts, rate limits.
RETRYABLE_HTTP = (401, 403, 404, 408, 429)
# 8x8 error codes that are account problems whatever the HTTP status said: retried, logged loudly.
ACCOUNT_ERRORS = {1001: "Illegal SubAccountId", 1200: "Unauthorized Access", 1201: "Access forbidden"}
REASON_LENGTH = 64

log = logging.getLogger(__name__)


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def interpret(http_status: int, body: dict) -> SendResult:
    """One 8x8 answer as a SendResult: any other 4xx is final (the request itself is wrong)."""
    if 200 <= http_status < 300:
        status = body.get("status") or {}
        code, umid = status.get("code"), body.get("umid")
        if code == "QUEUED" and umid:
            return SendResult(SENT, str(umid), http_status)
        if code == "REJECTED":
            return SendResult(REJECTED, None, http_status, str(status.get("description") or code)[:REASON_LENGTH])
        return SendResult(RETRY, reason="unreadable response")
    code = body.get("code") if isinstance(body.get("code"), int) else None
    reason = f"{code} {body.get('message') or ''}".rstrip() if code else f"HTTP {http_status}"
    if code in ACCOUNT_ERRORS:
        log.error("8x8 refused the account (%s): check SMS8X8_API_KEY and SMS8X8_SUBACCOUNT_ID", ACCOUNT_ERRORS[code])
    if http_status >= 500 or http_status in RETRYABLE_HTTP or code in ACCOUNT_ERRORS:
        return SendResult(RETRY, status_code=code or http_status, reason=reason[:REASON_LENGTH])
    return SendResult(REJECTED, status_code=code or http_status, reason=reason[:REASON_LENGTH])


class Sms8x8Provider:
    name = "8x8"

    def __init__(self, api_key: str, subaccount_id: str, sender_id: Optional[str] = None,
                 api_url: str = "https://sms.8x8.id"):
        self._url = f"{api_url.rstrip('/')}/api/v1/subaccounts/{subaccount_id}/messages"
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._sender_id = sender_id

    def send(self, to: str, body: str) -> SendResult:
        payload = {"destination": to, "text": body, "encoding": "AUTO"}
        if self._sender_id:
            payload["source"] = self._sender_id
        try:
            response = requests.post(self._url, json=payload, headers=self._headers, timeout=SMS_SEND_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            return SendResult(RETRY, reason=type(exc).__name__)
        return interpret(response.status_code, _json(response))
