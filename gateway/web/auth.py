"""Webhook access: Africa's Talking signs nothing, so every callback URL carries `?token=…`,
compared in constant time; optionally the caller's network must be in ALLOWED_NETWORKS.

The token decides first. A right token is never limited, whatever its address has sent
before: behind a reverse proxy every caller shares one address, and a spoofed
`X-Forwarded-For` can name the aggregator's, so a lock-out that came before the token would
let anyone silence every caller with a few wrong guesses. Only wrong tokens are counted, per
source address, and answered 429 past a limit, so the secret cannot be guessed at speed.

A refused USSD callback still gets a polite `END` screen in plain text: whoever holds the
phone must never see an error page."""
from __future__ import annotations

import hmac
import ipaddress
from typing import Optional

from flask import Response, current_app, request

from gateway.limits import Limit

FAILED_TOKENS = Limit("bad-token", 30, 60)  # wrong tokens per source address per minute
USSD_ENDPOINTS = frozenset({"at.ussd"})


def _allowed_network(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def ussd_unavailable(status: int = 200) -> Response:
    """A caller mid-session still gets a polite end, never an error page."""
    catalog = current_app.extensions["gateway"].runtime.content.catalog
    return Response(f"END {catalog.text('id', 'session.unavailable')}", status=status, mimetype="text/plain")


def refusal(status: int, reason: str) -> Response:
    """Plain text for every refusal; a USSD hop gets the session-unavailable `END` screen."""
    if request.endpoint in USSD_ENDPOINTS:
        return ussd_unavailable(status)
    return Response(reason, status=status, mimetype="text/plain")


def require_token() -> Optional[Response]:
    """A `before_request` hook for provider blueprints: 403 on a missing or wrong token or a
    caller outside ALLOWED_NETWORKS, 429 once an address has sent too many wrong tokens."""
    gateway = current_app.extensions["gateway"]
    settings = gateway.settings
    address = request.remote_addr or "unknown"
    if settings.allowed_networks and not _allowed_network(address, settings.allowed_networks):
        return refusal(403, "forbidden")
    expected = settings.webhook_token
    if not expected:
        return None
    given = request.args.get("token", "")
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    if not gateway.runtime.limiter.hit(FAILED_TOKENS, address):
        return refusal(429, "too many wrong tokens")
    return refusal(403, "forbidden")
