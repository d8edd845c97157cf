"""The TPPO hotline gateway: Flask app factory."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Optional

import click
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import logs
from gateway.cases.reports import ReportDesk
from gateway.channels.registry import WEBHOOK_NAMES, WEBHOOKS
from gateway.intake.ussd import UssdService
from gateway.runtime import Runtime, build_runtime
from gateway.settings import MAX_FORM_BYTES, Settings
from gateway.web import auth, health
from gateway.web.fast_ussd import UssdFastPath

log = logging.getLogger("gateway.http")
SLOW_REQUEST_MS = 1000.0


def request_log_level(blueprint: Optional[str], status: int, elapsed_ms: float) -> int:
    """A routine aggregator callback (answered, and fast) is logged at DEBUG: at a campaign's
    peak there are thousands a second, each already counted in /metrics with its latency, and a
    line for each would be a large share of a hop's cost. Everything else an operator
    may act on stays at INFO: a refused or failed callback, a slow one, every console request."""
    if elapsed_ms >= SLOW_REQUEST_MS:
        return logging.WARNING
    if blueprint in WEBHOOK_NAMES and status < 400:
        return logging.DEBUG
    return logging.INFO


@dataclass
class Gateway:
    """What the request handlers share: `current_app.extensions["gateway"]`."""

    runtime: Runtime
    ussd: Optional[UssdService]

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


def create_app(test_config: Optional[dict] = None) -> Flask:
    """`test_config` overrides Settings fields (database_url, redis_url, …) for tests."""
    settings = Settings.from_env(**(test_config or {}))
    logs.configure(json_lines=settings.json_logs, level=settings.log_level_number)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_FORM_BYTES
    # Serving refuses broken content; an operator command (inside click) loads it anyway so
    # that `validate-config` can say what is wrong.
    strict = click.get_current_context(silent=True) is None
    runtime = build_runtime(settings, strict=strict)
    ussd = UssdService(runtime, ReportDesk(runtime)) if runtime.content else None
    app.extensions["gateway"] = Gateway(runtime, ussd)

    for webhook in WEBHOOKS:
        app.register_blueprint(webhook)
    app.register_blueprint(health.bp)
    from gateway import cli, console
    cli.init_app(app)
    console.init_app(app)  # /console (staff sign-in, session secret) and /metrics
    # a USSD hop that files nothing is answered before Flask's machinery (gateway.web.fast_ussd)
    app.wsgi_app = UssdFastPath(app, app.wsgi_app, lambda blueprint, status, elapsed_ms:
                                request_log_level(blueprint, status, elapsed_ms))
    if runtime.settings.proxy_hops:  # the caller's address as the reverse proxy saw it
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=runtime.settings.proxy_hops)

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()
        g.request_id = logs.request_id(request.headers.get("X-Request-Id"))

    @app.after_request
    def _log_request(response: Response) -> Response:
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        log.log(request_log_level(request.blueprint, response.status_code, elapsed), "%s %s %s %.1fms",
                request.method, request.path, response.status_code, elapsed)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc):
        return Response("request too large", status=400, mimetype="text/plain")

    @app.errorhandler(Exception)
    def _unexpected(exc):
        if isinstance(exc, HTTPException):
            return exc
        log.exception("unhandled error on %s", request.path)
        if request.endpoint == "at.ussd":
            return auth.ussd_unavailable()
        return Response("internal error", status=500, mimetype="text/plain")

    return app
