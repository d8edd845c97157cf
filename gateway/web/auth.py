"""Webhook access: Africa's Talking signs nothing, so every callback URL carries `?token=…`,
compared in constant time; optionally the caller's network must be in ALLOWED_NETWORKS.

Wrong tokens are counted per source address and answered 429 past a limit, so the secret
cannot be guessed at speed. Only failures count: the aggregator's few addresses carry every
genuine callback, and limiting them would silence every caller at once.

A caller that gave the right token is re-checked against the lock-out at most once a second per
app in each process (CLEAR_FOR_SECONDS), not on every hop: that spares a Redis round trip per callback, and
an address can only be remembered as clear by presenting the right token, so a guesser gains
nothing from it. Wrong tokens are always counted in Redis."""
from __future__ import annotations

import hmac
import ipaddress
import time

from flask import abort, current_app, request

from ..limits import Limit

FAILED_TOKENS = Limit("bad-token", 30, 60)  # wrong tokens per source address per minute
CLEAR_FOR_SECONDS = 1.0
CLEAR_UNTIL = "webhook_clear_until"  # app.extensions key: address -> until when it is known not locked out


def _allowed_network(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def require_token() -> None:
    """A `before_request` hook for provider blueprints: 403 on a missing or wrong token or a
    caller outside ALLOWED_NETWORKS, 429 once an address has failed too often."""
    gateway = current_app.extensions["gateway"]
    settings, limiter = gateway.settings, gateway.runtime.limiter
    address = request.remote_addr or "unknown"
    if settings.allowed_networks and not _allowed_network(address, settings.allowed_networks):
        abort(403)
    expected = settings.webhook_token
    if not expected:
        return
    given = request.args.get("token", "")
    right = hmac.compare_digest(given.encode(), expected.encode())
    now = time.monotonic()
    clear_until = current_app.extensions.setdefault(CLEAR_UNTIL, {})  # per app, as its token and Redis are
    if right and clear_until.get(address, 0.0) > now:
        return
    clear_until.pop(address, None)  # a wrong token, or a re-check due: Redis decides
    if limiter.used_up(FAILED_TOKENS, address):
        abort(429)
    if not right:
        limiter.hit(FAILED_TOKENS, address)
        abort(403)
    if len(clear_until) > 1000:  # only callers that know the token get here: a handful of addresses
        clear_until.clear()
    clear_until[address] = now + CLEAR_FOR_SECONDS
