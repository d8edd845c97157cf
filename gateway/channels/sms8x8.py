"""8x8 webhooks, the second channel: inbound SMS and delivery receipts as JSON, read into the
same neutral events as Africa's Talking's forms. Nothing outside this module knows 8x8's shape.

8x8 (developer.8x8.com, "Inbound SMS" and "Delivery receipts for outbound SMS") posts
`{"namespace": "SMS", "eventType": …, "description": …, "payload": {…}}`; `payload.umid` is
its message id, numbers are E.164. It retries a callback not answered 2xx at 1, 10, 30 and
90 s, so callbacks are idempotent on `umid` (the inbox's unique provider id does that)."""
from __future__ import annotations

import re
from typing import Any

from ..delivery import DeliveryReport
from ..inbox import InboundSms
from ..phones import normalise

CHANNEL = "8x8-sms"
INBOUND_SMS, DELIVERY_RECEIPT = "inbound_message_received", "outbound_message_status_changed"
TEXT_LIMIT = 2000  # as for Africa's Talking: a long concatenated SMS is a few hundred characters
REASON_LENGTH = 64
_UMID = re.compile(r"^[\w\-.:]{1,100}$")

# `status.state` -> the message state it means (8x8 "Message status reference"); `read` is for
# chat apps and never comes for an SMS, so it is refused like any other unknown word.
DELIVERY_STATES = {"queued": "sent", "sent": "sent", "delivered": "delivered",
                   "undelivered": "failed", "rejected": "failed"}


class BadCallback(ValueError):
    """A callback this adapter cannot read; answered 400 with this text."""


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


def _storable(text: str) -> str:
    """JSON can escape half of a UTF-16 surrogate pair (`\\ud800`); such a string cannot be
    encoded, so the message could never be stored and 8x8 would retry, then drop it. Whole pairs
    become their one character, a lone half becomes U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def parse_sms(body: Any) -> InboundSms:
    """`source` that is not a phone number (an operator's alphanumeric sender) gives sender None:
    stored and acknowledged, never answered."""
    payload = _payload(body, INBOUND_SMS)
    umid = _umid(payload)
    if not payload.get("source"):
        raise BadCallback("missing payload.source")
    text = payload.get("body")
    return InboundSms(CHANNEL, umid, _sender(payload["source"]),
                      _storable(text if isinstance(text, str) else "")[:TEXT_LIMIT])


def parse_delivery(body: Any) -> DeliveryReport:
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
    return DeliveryReport(umid, DELIVERY_STATES[state], state, detail[:REASON_LENGTH] or None)
