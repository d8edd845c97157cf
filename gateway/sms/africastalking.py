"""Sending through the official africastalking SDK.

The SDK has no setting for its host: the base URL is redirected here, in one place, through a
subclass, so `AT_API_URL` can point it at a local fake. Per-recipient status codes are mapped
through one table; the SDK raises only on non-2xx and leaves per-recipient failures in the dict."""
from __future__ import annotations

import json
import logging
from typing import Optional

import requests
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService

from config.settings import SMS_SEND_TIMEOUT_SECONDS

from .base import REJECTED, RETRY, SENT, SendResult

# statusCode -> outcome (Africa's Talking's SMS API documentation). Anything else is retried once more
# and recorded, never assumed sent.
STATUS_CODES = {
    100: (SENT, "Processed"), 101: (SENT, "Sent"), 102: (SENT, "Queued"),
    401: (REJECTED, "RiskHold"), 402: (REJECTED, "InvalidSenderId"), 403: (REJECTED, "InvalidPhoneNumber"),
    404: (REJECTED, "UnsupportedNumberType"), 405: (REJECTED, "InsufficientBalance"),
    406: (REJECTED, "UserInBlacklist"), 407: (REJECTED, "CouldNotRoute"), 409: (REJECTED, "DoNotDisturbRejection"),
    500: (RETRY, "InternalServerError"), 501: (RETRY, "GatewayError"), 502: (RETRY, "RejectedByGateway"),
}

log = logging.getLogger(__name__)


class _RedirectableSMS(SMSService):
    def __init__(self, username: str, api_key: str, base_url: Optional[str]):
        self._override = base_url.rstrip("/") if base_url else None
        self._http = requests.Session()  # one kept-alive connection instead of a new TCP+TLS one per SMS
        super().__init__(username, api_key)
        self._read_environment_once()

    def _read_environment_once(self) -> None:
        """requests reads the environment (proxies and NO_PROXY, the CA bundle, ~/.netrc) again
        on every call, about 0.4 ms of a worker's CPU per SMS. One host, one process: the
        proxies and CA bundle it would find are taken here, once, and the session keeps them."""
        found = self._http.merge_environment_settings(self._baseUrl, {}, None, None, None)
        self._http.proxies.update(found["proxies"])
        self._http.verify = found["verify"]
        self._http.trust_env = False

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

    def send(self, to: str, body: str) -> SendResult:
        try:
            response = self._service.send(body, [to], sender_id=self._sender_id, timeout=SMS_SEND_TIMEOUT_SECONDS)
        except requests.RequestException as exc:  # first: requests' JSONDecodeError is a ValueError too
            return SendResult(RETRY, reason=type(exc).__name__)
        except ValueError:  # the SDK's own number check, before any request
            return SendResult(REJECTED, status_code=403, reason="InvalidPhoneNumber")
        except AfricasTalkingException as exc:  # non-2xx: the API key never appears in the text
            text = str(exc)[:60]
            if "authentication" in text.lower():
                # Retried, not dropped: once an operator fixes AT_USERNAME/AT_API_KEY, the alerts
                # still open in the outbox go out at the next worker start.
                log.error("Africa's Talking refused the credentials: check AT_USERNAME and AT_API_KEY")
            return SendResult(RETRY, reason=f"HTTP error: {text}")
        return interpret(response, to)
