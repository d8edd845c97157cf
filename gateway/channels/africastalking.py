"""Africa's Talking callbacks: USSD hops, incoming SMS and delivery reports, read from their
form fields into the gateway's neutral events; USSD replies rendered as `CON …` / `END …`.

USSD `text` is every input so far joined by `*` (empty on the first hit); numbers are E.164,
form-encoded as `%2B62…`, and a `+` sent unencoded decodes to a space."""
from __future__ import annotations

import re
from typing import Mapping

from flows.engine import Reply

from ..delivery import DeliveryReport
from ..inbox import InboundSms
from ..phones import normalise
from ..ussd import UssdHop
from . import AT_SMS, AT_USSD

CHANNEL = AT_USSD
SMS_CHANNEL = AT_SMS
USSD_LIMIT = 182
SMS_TEXT_LIMIT = 2000  # a long concatenated SMS is a few hundred characters; the rest is not a person typing
_SESSION_ID = re.compile(r"^[\w\-.:]{1,100}$")

# Delivery report `status` -> the message state it means. Sent/Submitted/Buffered: on its way;
# Success: on the handset; the rest: it will not arrive.
DELIVERY_STATES = {
    "Sent": "sent", "Submitted": "sent", "Buffered": "sent",
    "Success": "delivered",
    "Rejected": "failed", "Failed": "failed", "AbsentSubscriber": "failed", "Expired": "failed",
}


class BadCallback(ValueError):
    """A callback this adapter cannot read; answered 400 with this text."""


def parse_ussd(form: Mapping[str, str]) -> UssdHop:
    session_id = (form.get("sessionId") or "").strip()
    if not session_id:
        raise BadCallback("missing sessionId")
    if not _SESSION_ID.match(session_id):
        raise BadCallback("malformed sessionId")
    if "phoneNumber" not in form:
        raise BadCallback("missing phoneNumber")
    text = form.get("text") or ""
    inputs = tuple(text.split("*")) if text else ()
    return UssdHop(CHANNEL, session_id, form.get("phoneNumber"), inputs)


def _required(form: Mapping[str, str], *names: str) -> list[str]:
    values = [(form.get(name) or "").strip() for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise BadCallback(f"missing {', '.join(missing)}")
    return values


def _provider_id(value: str) -> str:
    if not _SESSION_ID.match(value):
        raise BadCallback("malformed id")
    return value


def parse_sms(form: Mapping[str, str]) -> InboundSms:
    """`from` that is not a phone number (an operator's alphanumeric sender) gives sender None:
    stored and acknowledged, never answered."""
    provider_id, sender = _required(form, "id", "from")
    return InboundSms(SMS_CHANNEL, _provider_id(provider_id), normalise(form.get("from")),
                      (form.get("text") or "")[:SMS_TEXT_LIMIT])


def parse_delivery(form: Mapping[str, str]) -> DeliveryReport:
    provider_id, status = _required(form, "id", "status")
    if status not in DELIVERY_STATES:
        raise BadCallback(f"unknown status {status!r}; allowed: {', '.join(DELIVERY_STATES)}")
    reason = (form.get("failureReason") or "").strip()[:64] or None
    return DeliveryReport(_provider_id(provider_id), DELIVERY_STATES[status], status, reason)


def render(reply: Reply) -> str:
    """The answer body. A screen is validated to fit at start-up; the cut here is a last guard."""
    body = ("END " if reply.end else "CON ") + reply.text
    return body[:USSD_LIMIT]
