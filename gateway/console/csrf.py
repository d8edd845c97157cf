"""CSRF protection for the console's forms: a random token kept in the signed session and
repeated in every form, compared in constant time on every unsafe request.

Scoped to the console blueprint on purpose: the /at/* webhooks are called by the aggregator,
which has no session and no token (they have their own secret)."""
from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session
from flask_babel import gettext as _

FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def token() -> str:
    """The session's token, created on first use (templates call it as `csrf_token()`)."""
    if FIELD not in session:
        session[FIELD] = secrets.token_urlsafe(32)
    return session[FIELD]


def rotate() -> None:
    """A new token at sign-in and sign-out, so one seen before cannot be replayed after."""
    session[FIELD] = secrets.token_urlsafe(32)


def protect() -> None:
    """A `before_request` hook: 400 on an unsafe request without the session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get(FIELD, "")
    given = request.form.get(FIELD, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(400, description=_("The form expired or did not come from this console. Go back, reload and try again."))
