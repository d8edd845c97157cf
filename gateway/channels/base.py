"""What every channel shares: the neutral events a provider's callback is read into, the
closed set of send outcomes, the sender protocol, and the one way a provider's webhook
blueprint is made (token check, plain-text answers, database-down handling).

A provider module (`africastalking.py`, `sms8x8.py`) reads its own field names into these
types and nothing outside it knows them; the intake reads only these types. Senders share the
HTTP session that reads the environment once, and the JSON-over-HTTPS call (8x8, WhatsApp)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Optional, Protocol

import requests
from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from gateway.phones import normalise
from gateway.settings import SMS_SEND_TIMEOUT_SECONDS
from gateway.store.states import MessageState
from gateway.web.auth import USSD_ENDPOINTS, require_token, ussd_unavailable

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)


class Channel(StrEnum):
    """Where a report or an SMS came in; stored with it."""

    AT_USSD = "at-ussd"
    AT_SMS = "at-sms"
    SMS_8X8 = "8x8-sms"
    WHATSAPP = "wa"


# Text channels: a report typed in words, for which no consent to be contacted was asked.
SMS_CHANNELS = frozenset({Channel.AT_SMS, Channel.SMS_8X8, Channel.WHATSAPP})
# Chat apps: replies go back on the same app, within its conversation window, and the USSD
# menu is served as numbered messages (gateway.intake.chat_menu, gateway.messaging.chat).
CHAT_CHANNELS = frozenset({Channel.WHATSAPP})


def chat_channel(channel: Optional[str]) -> Optional[str]:
    """The chat app a message about something that came on `channel` goes back on; None: SMS."""
    return channel if channel in CHAT_CHANNELS else None


class BadCallback(ValueError):
    """A callback a provider module cannot read; answered 400 with this text."""


@dataclass(frozen=True)
class UssdHop:
    channel: str
    session_id: str
    raw_phone: Optional[str]  # as the channel sent it; read through `phone`
    inputs: tuple[str, ...]  # every input of the session so far, in order

    @cached_property
    def phone(self) -> Optional[str]:
        """E.164, or None when not a valid number. Parsed once per hop, on first use."""
        return normalise(self.raw_phone)


@dataclass(frozen=True)
class InboundSms:
    channel: str
    provider_id: str
    sender: Optional[str]  # E.164, or None when the sender is not a phone number
    text: str
    kind: str = "text"     # a chat app's other kinds (image, location, ...) carry no text to read


@dataclass(frozen=True)
class DeliveryReport:
    provider_message_id: str
    state: MessageState     # SENT, DELIVERED or FAILED: the provider's word in the gateway's terms
    status: str             # the provider's own word, kept for operators
    reason: Optional[str] = None


class Outcome(StrEnum):
    """One send's outcome, whatever the provider: the worker decides retry or record on it."""

    SENT = "sent"          # accepted by the provider
    REJECTED = "rejected"  # final: do not retry
    RETRY = "retry"        # transient: try again later


SENT, REJECTED, RETRY = Outcome.SENT, Outcome.REJECTED, Outcome.RETRY


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: Optional[str] = None
    status_code: Optional[int] = None
    reason: Optional[str] = None

    @property
    def retryable(self) -> bool:
        return self.outcome == RETRY


class Provider(Protocol):
    name: str

    def send(self, to: str, body: str) -> SendResult: ...


def storable(text: str) -> str:
    """JSON can escape half of a UTF-16 surrogate pair (`\\ud800`); such a string cannot be
    encoded, so the message could never be stored and the provider would retry, then drop it.
    Whole pairs become their one character, a lone half becomes U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def request_json():
    """A JSON callback's body; the content type is not trusted to say so. A body nested deeper
    than the parser can recurse is no callback either: refused like any body that is no object."""
    try:
        return request.get_json(force=True, silent=True)
    except RecursionError:
        return None


def json_object(response) -> dict:
    """A provider's JSON answer as a dict; anything else (HTML from a proxy, a list) as empty."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def runtime() -> Runtime:
    """The app's runtime, for a webhook handler."""
    return current_app.extensions["gateway"].runtime


def plain_text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _bad_callback(exc: BadCallback) -> Response:
    return plain_text(str(exc), 400)


def not_stored(path: str, exc: SQLAlchemyError) -> None:
    """The log line of a callback the database could not take, whichever path answered it."""
    log.error("callback %s not stored: %s", path, type(exc).__name__)


def _database_down(exc: SQLAlchemyError) -> Response:
    """The callback was not stored: 503 makes the aggregator retry instead of the message being
    lost; a USSD caller mid-session gets the polite end screen."""
    not_stored(request.path, exc)
    if request.endpoint in USSD_ENDPOINTS:
        return ussd_unavailable()
    return plain_text("temporarily unavailable, retry", 503)


def webhook_blueprint(name: str, url_prefix: str, guard: Callable[[], Optional[Response]] = require_token) -> Blueprint:
    """A provider's callbacks: every one behind `guard` (the webhook token, unless the provider
    signs its callbacks instead), a callback it cannot read answered 400, a database that is
    down answered 503."""
    bp = Blueprint(name, __name__, url_prefix=url_prefix)
    bp.before_request(guard)
    bp.register_error_handler(BadCallback, _bad_callback)
    bp.register_error_handler(SQLAlchemyError, _database_down)
    return bp


def kept_session(url: str) -> requests.Session:
    """One kept-alive connection per provider instead of a new TCP+TLS one per message.
    requests reads the environment (proxies and NO_PROXY, the CA bundle, ~/.netrc) again on
    every call; one host, one process: what it would find for `url` is taken once and kept."""
    http = requests.Session()
    found = http.merge_environment_settings(url, {}, None, None, None)
    http.proxies.update(found["proxies"])
    http.verify = found["verify"]
    http.trust_env = False
    return http


class JsonApi:
    """A provider API that takes one JSON POST per message with a bearer token (8x8, WhatsApp).
    A network failure is RETRY; the provider's module reads its own answers (`interpret`)."""

    def __init__(self, url: str, token: str, interpret: Callable[[int, dict], SendResult]):
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._http = kept_session(url)
        self._interpret = interpret

    def post(self, payload: dict) -> SendResult:
        try:
            response = self._http.post(self._url, json=payload, headers=self._headers,
                                       timeout=SMS_SEND_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            return SendResult(RETRY, reason=type(exc).__name__)
        return self._interpret(response.status_code, json_object(response))
