"""8x8, the second SMS provider, in one place: its webhooks (`/8x8/sms`, `/8x8/delivery`, JSON)
read into the same neutral events as Africa's Talking's forms, and sending through its SMS API.

8x8 (developer.8x8.com, "Inbound SMS" and "Delivery receipts for outbound SMS") posts
`{"namespace": "SMS", "eventType": …, "description": …, "payload": {…}}`; `payload.umid` is
its message id, numbers are E.164. It retries a callback not answered 2xx at 1, 10, 30 and
90 s, so callbacks are idempotent on `umid` (the inbox's unique provider id does that).

Sending: `POST {SMS8X8_API_URL}/api/v1/subaccounts/{SMS8X8_SUBACCOUNT_ID}/messages` with
`Authorization: Bearer {SMS8X8_API_KEY}`; the default URL is 8x8's Indonesian region. A 200
answer carries `status.code` QUEUED (accepted, `umid` is the id delivery receipts quote) or
REJECTED; an error answer carries an 8x8 error `code` (developer.8x8.com, "API Error codes").
The key never leaves the Authorization header, so no log line can carry it."""
from __future__ import annotations

import logging
import re
from typing import Any, Optional

from flask import Response

from gateway.channels import base
from gateway.channels.base import REJECTED, RETRY, SENT, BadCallback, SendResult, plain_text, request_json
from gateway.intake import take
from gateway.phones import normalise
from gateway.store.states import MessageState

log = logging.getLogger(__name__)

CHANNEL = base.Channel.SMS_8X8
INBOUND_SMS, DELIVERY_RECEIPT = "inbound_message_received", "outbound_message_status_changed"
TEXT_LIMIT = 2000  # as for Africa's Talking: a long concatenated SMS is a few hundred characters
REASON_LENGTH = 64
_UMID = re.compile(r"^[\w\-.:]{1,100}$")

# `status.state` -> the message state it means (8x8 "Message status reference"); `read` is for
# chat apps and never comes for an SMS, so it is refused like any other unknown word.
DELIVERY_STATES = {"queued": MessageState.SENT, "sent": MessageState.SENT, "delivered": MessageState.DELIVERED,
                   "undelivered": MessageState.FAILED, "rejected": MessageState.FAILED}

# HTTP statuses of an unsent message that a later try can fix: credentials, URL or sub-account
# (an operator fixes the configuration and the alerts still open go out), timeouts, rate limits.
RETRYABLE_HTTP = (401, 403, 404, 408, 429)
# 8x8 error codes that are account problems whatever the HTTP status said: retried, logged loudly.
ACCOUNT_ERRORS = {1001: "Illegal SubAccountId", 1200: "Unauthorized Access", 1201: "Access forbidden"}


# -- reading callbacks -------------------------------------------------------------------------

def _payload(body: Any, event_type: str) -> dict:
    if not isinstance(body, dict):
        raise BadCallback("expected a JSON object")
    if body.get("eventType") != event_type:
        raise BadCallback(f"eventType must be {event_type!r}, not {body.get('eventType')!r}")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise BadCallback("missing payload")
    return payload


def _umid(payload: dict) -> str:
    umid = payload.get("umid")
    if not isinstance(umid, str) or not umid.strip():
        raise BadCallback("missing payload.umid")
    if not _UMID.match(umid.strip()):
        raise BadCallback("malformed payload.umid")
    return umid.strip()


def _sender(raw: Any):
    """E.164 or None. A number of digits only (some Indonesian gateways drop the `+`) is
    read as international, never as a national number."""
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    return normalise(f"+{raw}" if raw.isdigit() and not raw.startswith("0") else raw)



def parse_sms(body: Any) -> base.InboundSms:
    """`source` that is not a phone number (an operator's alphanumeric sender) gives sender None:
    stored and acknowledged, never answered."""
    payload = _payload(body, INBOUND_SMS)
    umid = _umid(payload)
    if not payload.get("source"):
        raise BadCallback("missing payload.source")
    text = payload.get("body")
    return base.InboundSms(CHANNEL, umid, _sender(payload["source"]),
                           base.storable(text if isinstance(text, str) else "")[:TEXT_LIMIT])


def parse_delivery(body: Any) -> base.DeliveryReport:
    payload = _payload(body, DELIVERY_RECEIPT)
    umid = _umid(payload)
    status = payload.get("status")
    state = status.get("state") if isinstance(status, dict) else None
    if not state:
        raise BadCallback("missing payload.status.state")
    if not isinstance(state, str):  # a list or an object cannot name a state
        raise BadCallback("payload.status.state must be a word")
    if state not in DELIVERY_STATES:
        raise BadCallback(f"unknown status.state {state!r}; allowed: {', '.join(DELIVERY_STATES)}")
    detail = ": ".join(str(status[k]) for k in ("detail", "errorMessage") if status.get(k))
    return base.DeliveryReport(umid, DELIVERY_STATES[state], state, detail[:REASON_LENGTH] or None)


# -- the webhook -------------------------------------------------------------------------------

bp = base.webhook_blueprint("sms8x8", "/8x8")



@bp.post("/sms")
def sms() -> Response:
    return plain_text(take(base.runtime(), parse_sms(request_json())))


@bp.post("/delivery")
def delivery_report() -> Response:
    return plain_text(take(base.runtime(), parse_delivery(request_json())))


# -- sending -----------------------------------------------------------------------------------

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
        self._api = base.JsonApi(f"{api_url.rstrip('/')}/api/v1/subaccounts/{subaccount_id}/messages", api_key,
                                 interpret)
        self._sender_id = sender_id

    @classmethod
    def from_settings(cls, s) -> Sms8x8Provider:
        return cls(s.sms8x8_api_key, s.sms8x8_subaccount_id, s.sms8x8_sender_id, s.sms8x8_api_url)

    def send(self, to: str, body: str) -> SendResult:
        payload = {"destination": to, "text": body, "encoding": "AUTO"}
        if self._sender_id:
            payload["source"] = self._sender_id
        return self._api.post(payload)
