"""Africa's Talking's USSD hop without Flask's request machinery, when nothing needs it.

Almost every hop is a caller moving between screens that file nothing: the right token, a
small form, a screen kept by its inputs (gateway.intake.ussd) and the session's verdict on
the limits. For those, Flask's request and app contexts, its routing, hooks and response
object were most of the hop's cost; for the hop that files a report or a subscription they
were a fair share of it too. This WSGI middleware, in front of the Flask app, answers a hop
itself, exactly as the Flask view would: same body, status and headers, the same X-Request-Id,
the same request log line (with the request id on it), the same webhook metrics, and the same
polite end when the effect's database is away. Everything else goes to Flask untouched, with
the body handed back when it was read: a wrong or missing token (the refusal and its limiter),
another path or method, a body that is not a small url-encoded form, a cookie, an unreadable
callback (its 400), and any app with ALLOWED_NETWORKS set."""
from __future__ import annotations

import hmac
import io
import logging
import time
from typing import Callable, Iterable
from urllib.parse import parse_qsl

from sqlalchemy.exc import SQLAlchemyError

from gateway import logs
from gateway.channels import africastalking, base
from gateway.channels.base import BadCallback
from gateway.settings import MAX_FORM_BYTES

log = logging.getLogger("gateway.http")

PATH = africastalking.bp.url_prefix + "/ussd"
FORM = "application/x-www-form-urlencoded"
_PLAIN = "text/plain; charset=utf-8"


def _first_values(encoded: str) -> dict[str, str]:
    """A query string or url-encoded body read as werkzeug reads it, first value of each name."""
    fields: dict[str, str] = {}
    for name, value in parse_qsl(encoded, keep_blank_values=True, errors="werkzeug.url_quote"):
        fields.setdefault(name, value)
    return fields


class UssdFastPath:
    def __init__(self, app, inner: Callable, log_level: Callable[[str, int, float], int]):
        self.inner = inner  # Flask's own wsgi_app
        self.gateway = app.extensions["gateway"]
        self.metrics = app.extensions["webhook_metrics"]
        self.log_level = log_level
        settings = self.gateway.settings
        self.enabled = self.gateway.ussd is not None and not settings.allowed_networks
        self.token = (settings.webhook_token or "").encode()
        if self.enabled:
            catalog = self.gateway.runtime.content.catalog
            self.unavailable = f"END {catalog.text('id', 'session.unavailable')}"

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST" or not self.enabled
                or "HTTP_COOKIE" in environ or "HTTP_TRANSFER_ENCODING" in environ):
            return self.inner(environ, start_response)
        started = time.perf_counter()
        if self.token and not hmac.compare_digest(
                _first_values(environ.get("QUERY_STRING", "")).get("token", "").encode(), self.token):
            return self.inner(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or ""
        mimetype = (environ.get("CONTENT_TYPE") or "").partition(";")[0].strip().lower()
        if mimetype != FORM or not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return self.inner(environ, start_response)
        raw = environ["wsgi.input"].read(int(length))
        try:
            if len(raw) != int(length):
                raise ValueError("short body")
            hop = africastalking.parse_ussd(_first_values(raw.decode()))
        except (ValueError, BadCallback):  # Flask reads it again, and answers as it always has
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.inner(environ, start_response)
        request_id = logs.request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = logs.REQUEST_ID.set(request_id)
        try:
            try:
                body = africastalking.render(self.gateway.ussd.answer(hop))
            except SQLAlchemyError as exc:  # as the webhook's handler for a database that is away
                base.not_stored(PATH, exc)
                body = self.unavailable
            except Exception:  # as the app's error handler: logged, and the caller gets a polite end
                log.exception("unhandled error on %s", PATH)
                body = self.unavailable
            seconds = time.perf_counter() - started
            elapsed = seconds * 1000
            log.log(self.log_level(africastalking.bp.name, 200, elapsed), "%s %s %s %.1fms", "POST", PATH, 200,
                    elapsed)
            self.metrics.record(PATH, 200, seconds, self.gateway.runtime.redis)
        finally:
            logs.REQUEST_ID.reset(token)
        data = body.encode()
        start_response("200 OK", [("Content-Type", _PLAIN), ("Content-Length", str(len(data))),
                                  ("X-Request-Id", request_id)])
        return [data]
