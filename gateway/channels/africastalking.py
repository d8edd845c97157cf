"""Africa's Talking, the whole provider in one place: its callbacks (USSD hops, incoming SMS,
delivery reports) read from their form fields into the neutral events, its webhook blueprint
under `/at`, USSD replies rendered as `CON …` / `END …`, and sending through the official SDK.

USSD `text` is every input so far joined by `*` (empty on the first hit); numbers are E.164,
form-encoded as `%2B62…`, and a `+` sent unencoded decodes to a space. USSD answers in the
response itself; SMS and delivery reports are only recorded (a worker answers an SMS), so each
returns 200 in milliseconds, and 503 while the database is down so the aggregator retries.

The SDK has no setting for its host: the base URL is redirected in one place, through a
subclass, so `AT_API_URL` can point it at a local fake. Per-recipient status codes are mapped
through one table; the SDK raises only on non-2xx and leaves per-recipient failures in the dict."""
from __future__ import annotations

import json
import logging
import re
from typing import Mapping, Optional

import requests
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService
from flask import Response, current_app, request

from flows.engine import Reply
from gateway.channels import base
from gateway.channels.base import REJECTED, RETRY, SENT, BadCallback, SendResult, UssdHop, plain_text
from gateway.intake import take
from gateway.phones import normalise
from gateway.settings import SMS_SEND_TIMEOUT_SECONDS
from gateway.store.states import MessageState

log = logging.getLogger(__name__)

CHANNEL = base.Channel.AT_USSD
SMS_CHANNEL = base.Channel.AT_SMS
USSD_LIMIT = 182
SMS_TEXT_LIMIT = 2000  # a long concatenated SMS is a few hundred characters; the rest is not a person typing
_SESSION_ID = re.compile(r"^[\w\-.:]{1,100}$")

# Delivery report `status` -> the message state it means. Sent/Submitted/Buffered: on its way;
# Success: on the handset; the rest: it will not arrive.
DELIVERY_STATES = {
    "Sent": MessageState.SENT, "Submitted": MessageState.SENT, "Buffered": MessageState.SENT,
    "Success": MessageState.DELIVERED,
    "Rejected": MessageState.FAILED, "Failed": MessageState.FAILED,
    "AbsentSubscriber": MessageState.FAILED, "Expired": MessageState.FAILED,
}

# statusCode -> outcome (Africa's Talking's SMS API documentation). Anything else is retried once more
# and recorded, never assumed sent.
STATUS_CODES = {
    100: (SENT, "Processed"), 101: (SENT, "Sent"), 102: (SENT, "Queued"),
    401: (REJECTED, "RiskHold"), 402: (REJECTED, "InvalidSenderId"), 403: (REJECTED, "InvalidPhoneNumber"),
    404: (REJECTED, "UnsupportedNumberType"), 405: (REJECTED, "InsufficientBalance"),
    406: (REJECTED, "UserInBlacklist"), 407: (REJECTED, "CouldNotRoute"), 409: (REJECTED, "DoNotDisturbRejection"),
    500: (RETRY, "InternalServerError"), 501: (RETRY, "GatewayError"), 502: (RETRY, "RejectedByGateway"),
}


# -- reading callbacks -------------------------------------------------------------------------

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


def parse_sms(form: Mapping[str, str]) -> base.InboundSms:
    """`from` that is not a phone number (an operator's alphanumeric sender) gives sender None:
    stored and acknowledged, never answered."""
    provider_id, sender = _required(form, "id", "from")
    return base.InboundSms(SMS_CHANNEL, _provider_id(provider_id), normalise(form.get("from")),
                      (form.get("text") or "")[:SMS_TEXT_LIMIT])


def parse_delivery(form: Mapping[str, str]) -> base.DeliveryReport:
    provider_id, status = _required(form, "id", "status")
    if status not in DELIVERY_STATES:
        raise BadCallback(f"unknown status {status!r}; allowed: {', '.join(DELIVERY_STATES)}")
    reason = (form.get("failureReason") or "").strip()[:64] or None
    return base.DeliveryReport(_provider_id(provider_id), DELIVERY_STATES[status], status, reason)


def render(reply: Reply) -> str:
    """The answer body. A screen is validated to fit at start-up; the cut here is a last guard."""
    body = ("END " if reply.end else "CON ") + reply.text
    return body[:USSD_LIMIT]


# -- the webhook -------------------------------------------------------------------------------

bp = base.webhook_blueprint("at", "/at")


@bp.post("/ussd")
def ussd() -> Response:
    reply = current_app.extensions["gateway"].ussd.answer(parse_ussd(request.form))
    return plain_text(render(reply))


@bp.post("/sms")
def sms() -> Response:
    return plain_text(take(base.runtime(), parse_sms(request.form)))


@bp.post("/delivery")
def delivery_report() -> Response:
    return plain_text(take(base.runtime(), parse_delivery(request.form)))


@bp.post("/ussd/events")
def ussd_event() -> Response:
    """End-of-session notification. Acknowledged and nothing more: an Africa's Talking session
    keeps no state between hops (its `text` carries every input), so there is nothing to clear."""
    return plain_text("ok")


# -- sending -----------------------------------------------------------------------------------

class _RedirectableSMS(SMSService):
    def __init__(self, username: str, api_key: str, base_url: Optional[str]):
        self._override = base_url.rstrip("/") if base_url else None
        super().__init__(username, api_key)
        self._http = base.kept_session(self._baseUrl)

    def _init_service(self):
        super()._init_service()
        if self._override:
            self._baseUrl = self._override

    def _Service__make_post_request(self, url, headers, data, params, callback=None, timeout=None):
        """The SDK posts with module-level `requests.post`; the same call through our session."""
        response = self._http.post(url=url, headers=headers, params=params, data=data, timeout=timeout)
        if callback:
            return callback(response)
        return response


def interpret(response, to: str) -> SendResult:
    """Turn the SDK's return value (a dict, or a string when the content type carried a
    charset) into a SendResult for the one recipient we sent to."""
    if isinstance(response, str):
        try:
            response = json.loads(response)
        except ValueError:
            return SendResult(RETRY, reason="unreadable response")
    data = (response or {}).get("SMSMessageData") or {}
    recipients = [r for r in data.get("Recipients") or [] if r.get("number") == to] or data.get("Recipients") or []
    if not recipients:
        return SendResult(REJECTED, reason=str(data.get("Message") or "no recipient in response")[:64])
    first = recipients[0]
    code = first.get("statusCode")
    outcome, word = STATUS_CODES.get(code, (RETRY, f"unknown status {code}"))
    message_id = first.get("messageId")
    return SendResult(outcome, message_id if outcome == SENT and message_id not in (None, "None") else None,
                      code, None if outcome == SENT else (first.get("status") or word))


class AfricasTalkingProvider:
    name = "africastalking"

    def __init__(self, username: str, api_key: str, sender_id: Optional[str] = None,
                 api_url: Optional[str] = None):
        self._service = _RedirectableSMS(username, api_key, api_url)
        self._sender_id = sender_id

    @classmethod
    def from_settings(cls, s) -> AfricasTalkingProvider:
        return cls(s.at_username, s.at_api_key, s.at_sender_id, s.at_api_url)

    def send(self, to: str, body: str) -> SendResult:
        try:
            response = self._service.send(body, [to], sender_id=self._sender_id, timeout=SMS_SEND_TIMEOUT_SECONDS)
        except requests.RequestException as exc:  # first: requests' JSONDecodeError is a ValueError too
            return SendResult(RETRY, reason=type(exc).__name__)
        except ValueError:  # the SDK's own number check, before any request
            return SendResult(REJECTED, status_code=403, reason="InvalidPhoneNumber")
        except AfricasTalkingException as exc:  # non-2xx: the API key never appears in the text
            detail = str(exc)[:60]
            if "authentication" in detail.lower():
                # Retried, not dropped: once an operator fixes AT_USERNAME/AT_API_KEY, the alerts
                # still open in the outbox go out at the next worker start.
                log.error("Africa's Talking refused the credentials: check AT_USERNAME and AT_API_KEY")
            return SendResult(RETRY, reason=f"HTTP error: {detail}")
        return interpret(response, to)
