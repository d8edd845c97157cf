"""The responder and operator console (/console) and the Prometheus endpoint (/metrics).

`init_app` is the one call create_app makes: it sets the session secret and cookie flags and
registers both blueprints. The console's session cookie is the only use of Flask's session in
the app, so its settings live here, next to the code that relies on them."""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from gateway.console import auth, community, i18n, metrics, views  # noqa: F401  (community adds its pages to views.bp)
from gateway.crypto import development_key


def session_secret(settings) -> str:
    """SECRET_KEY; production refuses to start without it (gateway/settings.py). A development
    run derives one from the data key instead of keeping a second key file: every worker process
    then signs alike, and a test app writes nothing under var/."""
    if settings.secret_key:
        return settings.secret_key
    data_key = (settings.data_key or development_key(settings.var_dir / "data.key")).split(",")[0].strip()
    return hmac.new(data_key.encode(), b"tppo console session cookies", hashlib.sha256).hexdigest()


class SessionOnlyWithCookie(SecureCookieSessionInterface):
    """Flask's cookie session, without building its signer for a request that
    carries no session cookie: every webhook hop. Signing in still starts a session as before."""

    def open_session(self, app, request):
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    settings = app.extensions["gateway"].runtime.settings
    app.secret_key = session_secret(settings)
    app.session_interface = SessionOnlyWithCookie()
    app.config.update(
        SESSION_COOKIE_NAME="tppo_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=auth.SESSION_IDLE_SECONDS),
    )
    i18n.init_app(app)
    app.register_blueprint(views.bp)
    metrics.init_app(app)
