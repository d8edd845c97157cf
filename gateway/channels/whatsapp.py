"""WhatsApp Cloud API, the whole provider in one place: its webhook (`/wa/webhook`: Meta's
verification handshake, and signed JSON carrying messages and statuses) read into the same
neutral events as the SMS aggregators', and sending through the Graph API.

Meta signs every callback instead of carrying a token in the URL: `X-Hub-Signature-256` is
`sha256=` and the HMAC-SHA256 of the raw body under the app secret. The signature is checked
before anything in the body is read, so the blueprint's guard is the signature, not `?token=`.
One POST may carry several entries, changes, messages and statuses; each becomes its own
event, and Meta retries a POST not answered 2xx, so every event is idempotent (the inbox's
unique provider id for a message, the delivery state's compare-and-set for a status).

Text (and a template's quick-reply button) is read as an SMS would be; media, locations,
contacts and interactive answers are stored as an inbound of that kind, answered politely
that the hotline reads text; reactions and system notices are acknowledged and dropped.

Sending: `POST {WHATSAPP_API_URL}/{WHATSAPP_PHONE_NUMBER_ID}/messages` with
`Authorization: Bearer {WHATSAPP_TOKEN}`, a text or an approved template. The token never
leaves that header, so no log line can carry it."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any, Iterator, Optional, Sequence, Union

from flask import Response, current_app, request

from gateway.channels import base
from gateway.channels.base import REJECTED, RETRY, SENT, BadCallback, DeliveryReport, InboundSms, SendResult
from gateway.intake import take
from gateway.phones import normalise
from gateway.store.states import MessageState

log = logging.getLogger(__name__)

CHANNEL = base.Channel.WHATSAPP
TEXT_LIMIT = 2000      # as for SMS: what is longer is no person typing for help
SEND_LIMIT = 4096      # a WhatsApp text message's body
REASON_LENGTH = 64
MAX_WEBHOOK_BYTES = 512 * 1024  # a batch of statuses is larger than any SMS callback
_WAMID = re.compile(r"^[\w\-.:=+/]{1,128}$")
_CHALLENGE = re.compile(r"^[\w\-.]{1,128}$")

# `statuses[].status` -> the message state it means; `read` is a delivery the person has seen.
DELIVERY_STATES = {"sent": MessageState.SENT, "delivered": MessageState.DELIVERED,
                   "read": MessageState.DELIVERED, "failed": MessageState.FAILED}
TEXT_TYPES = ("text", "button")  # a template's quick-reply button carries the words on it
SILENT_TYPES = ("reaction", "system", "ephemeral", "request_welcome")  # nothing a person asked

# Graph API error codes (Meta, "Cloud API error codes") a later try can fix: throttling, a
# busy or unavailable service, and credentials an operator can repair while the outbox waits.
RETRY_CODES = {1, 2, 4, 17, 80007, 130429, 131000, 131016, 131048, 131056, 133004}
ACCOUNT_CODES = {0: "AuthException", 3: "API method", 10: "permission denied", 190: "access token expired",
                 200: "permission", 131031: "account locked"}


# -- the signature ------------------------------------------------------------------------------

def signature(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def require_signature() -> Optional[Response]:
    """The blueprint's guard, in place of the URL token: a POST whose signature is missing or
    does not match the raw body under WHATSAPP_APP_SECRET is refused before it is parsed. With
    no app secret configured nothing can be trusted, so every POST is refused. The GET
    handshake is checked by its own view against the verify token."""
    if request.method != "POST":
        return None
    request.max_content_length = MAX_WEBHOOK_BYTES
    secret = current_app.extensions["gateway"].settings.whatsapp_app_secret
    given = request.headers.get("X-Hub-Signature-256", "")
    if not secret or not hmac.compare_digest(given.encode(), signature(request.get_data(cache=True), secret).encode()):
        return base.plain_text("forbidden", 403)
    return None


# -- reading callbacks --------------------------------------------------------------------------

Event = Union[InboundSms, DeliveryReport]


def _sender(raw: Any) -> Optional[str]:
    """`from` is a WhatsApp id: the number's digits without `+`."""
    if not isinstance(raw, str) or not raw.strip().isdigit():
        return None
    return normalise(f"+{raw.strip()}")


def _wamid(raw: Any) -> Optional[str]:
    return raw.strip() if isinstance(raw, str) and _WAMID.match(raw.strip()) else None



def _message(raw: Any) -> Optional[InboundSms]:
    if not isinstance(raw, dict) or not (wamid := _wamid(raw.get("id"))):
        return None
    kind = raw.get("type") if isinstance(raw.get("type"), str) else "unsupported"
    if kind in SILENT_TYPES:
        return None
    sender = _sender(raw.get("from"))
    if kind in TEXT_TYPES:
        holder = raw.get(kind) if isinstance(raw.get(kind), dict) else {}
        text = holder.get("body" if kind == "text" else "text")
        return InboundSms(CHANNEL, wamid, sender, base.storable(text if isinstance(text, str) else "")[:TEXT_LIMIT])
    return InboundSms(CHANNEL, wamid, sender, "", kind=kind[:16])


def _status(raw: Any) -> Optional[DeliveryReport]:
    if not isinstance(raw, dict) or not (wamid := _wamid(raw.get("id"))):
        return None
    status = raw.get("status")
    if status not in DELIVERY_STATES:  # `deleted`, `warning`: nothing the gateway tracks
        return None
    errors = raw.get("errors") if isinstance(raw.get("errors"), list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    reason = " ".join(str(first[k]) for k in ("code", "title") if first.get(k) not in (None, ""))
    return DeliveryReport(wamid, DELIVERY_STATES[status], status, reason[:REASON_LENGTH] or None)


def _values(body: Any, phone_number_id: Optional[str]) -> Iterator[dict]:
    if not isinstance(body, dict):
        raise BadCallback("expected a JSON object")
    if body.get("object") != "whatsapp_business_account":
        raise BadCallback(f"object must be 'whatsapp_business_account', not {body.get('object')!r}")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise BadCallback("missing entry")
    for entry in entries:
        for change in (entry.get("changes") if isinstance(entry, dict) else None) or []:
            if not isinstance(change, dict) or change.get("field") != "messages":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            if phone_number_id and str(metadata.get("phone_number_id")) != phone_number_id:
                log.warning("whatsapp callback for another phone number id: ignored")
                continue
            yield value


def parse_webhook(body: Any, phone_number_id: Optional[str] = None) -> list[Event]:
    """Every message and status of one POST, in order. A change for another phone number id
    (one app, several numbers) is not ours to answer; an entry the adapter cannot read is
    skipped, never a reason to refuse the others (Meta would retry them all)."""
    events: list[Event] = []
    for value in _values(body, phone_number_id):
        for raw in value.get("messages") if isinstance(value.get("messages"), list) else []:
            if (event := _message(raw)) is not None:
                events.append(event)
        for raw in value.get("statuses") if isinstance(value.get("statuses"), list) else []:
            if (event := _status(raw)) is not None:
                events.append(event)
    return events


# -- the webhook --------------------------------------------------------------------------------

bp = base.webhook_blueprint("wa", "/wa", guard=require_signature)


@bp.get("/webhook")
def verify() -> Response:
    """Meta's subscription handshake: the challenge echoed only for the verify token."""
    expected = current_app.extensions["gateway"].settings.whatsapp_verify_token
    given, challenge = request.args.get("hub.verify_token", ""), request.args.get("hub.challenge", "")
    if (expected and request.args.get("hub.mode") == "subscribe" and _CHALLENGE.match(challenge)
            and hmac.compare_digest(given.encode(), expected.encode())):
        return base.plain_text(challenge)
    return base.plain_text("forbidden", 403)



@bp.post("/webhook")
def webhook() -> Response:
    runtime = base.runtime()
    answers = [take(runtime, event)
               for event in parse_webhook(base.request_json(), runtime.settings.whatsapp_phone_number_id)]
    return base.plain_text("; ".join(answers) or "nothing to do")


# -- sending ------------------------------------------------------------------------------------

def interpret(http_status: int, body: dict) -> SendResult:
    """One Graph API answer as a SendResult. Any error not known to pass is final, so a
    message outside the 24-hour window (131047) or to a number without WhatsApp (131026) is
    handed to the fallback at once rather than retried."""
    if 200 <= http_status < 300:
        messages = body.get("messages")
        wamid = messages[0].get("id") if isinstance(messages, list) and messages and isinstance(messages[0], dict) \
            else None
        if wamid:
            return SendResult(SENT, str(wamid), http_status)
        return SendResult(RETRY, reason="unreadable response")
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    reason = (f"{code} {error.get('message') or ''}".rstrip() if code is not None else f"HTTP {http_status}")
    if code in ACCOUNT_CODES or http_status == 401:
        log.error("WhatsApp refused the account (%s): check WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID",
                  ACCOUNT_CODES.get(code, f"HTTP {http_status}"))
        return SendResult(RETRY, status_code=code if code is not None else http_status, reason=reason[:REASON_LENGTH])
    if http_status >= 500 or http_status == 429 or code in RETRY_CODES:
        return SendResult(RETRY, status_code=code or http_status, reason=reason[:REASON_LENGTH])
    return SendResult(REJECTED, status_code=code or http_status, reason=reason[:REASON_LENGTH])


class WhatsAppProvider:
    name = "whatsapp"

    def __init__(self, token: str, phone_number_id: str, api_url: str):
        self._api = base.JsonApi(f"{api_url.rstrip('/')}/{phone_number_id}/messages", token, interpret)

    @classmethod
    def from_settings(cls, s) -> WhatsAppProvider:
        return cls(s.whatsapp_token or "", s.whatsapp_phone_number_id or "", s.whatsapp_api_url)

    def send(self, to: str, body: str) -> SendResult:
        """A free-form text: only within 24 hours of the person's last message."""
        return self._api.post({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to.lstrip("+"),
                           "type": "text", "text": {"preview_url": False, "body": body[:SEND_LIMIT]}})

    def send_template(self, to: str, name: str, language: str, params: Sequence[str]) -> SendResult:
        """An approved template, the only message allowed outside the 24-hour window."""
        template: dict = {"name": name, "language": {"code": language}}
        if params:
            template["components"] = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}]
        return self._api.post({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to.lstrip("+"),
                           "type": "template", "template": template})
