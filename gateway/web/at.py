"""Africa's Talking callbacks. Provider specifics stay in gateway.channels.africastalking.

USSD answers in the response itself. SMS and delivery reports are only recorded here (a
worker answers an SMS), so each returns 200 in milliseconds; when the database is down they
answer 503, and the aggregator retries instead of the message being lost."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from .. import delivery, inbox
from ..channels import africastalking as at
from .auth import require_token, ussd_unavailable

log = logging.getLogger(__name__)

bp = Blueprint("at", __name__, url_prefix="/at")
bp.before_request(require_token)


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


@bp.errorhandler(at.BadCallback)
def _bad_callback(exc: at.BadCallback) -> Response:
    return _text(str(exc), 400)


@bp.errorhandler(SQLAlchemyError)
def _database_down(exc: SQLAlchemyError) -> Response:
    log.error("callback %s not stored: %s", request.path, type(exc).__name__)
    if request.endpoint == "at.ussd":
        return ussd_unavailable()
    return _text("temporarily unavailable, retry", 503)


@bp.post("/ussd")
def ussd() -> Response:
    reply = current_app.extensions["gateway"].ussd.answer(at.parse_ussd(request.form))
    return _text(at.render(reply))


@bp.post("/sms")
def sms() -> Response:
    return _text(inbox.receive(current_app.extensions["gateway"].runtime, at.parse_sms(request.form)))


@bp.post("/delivery")
def delivery_report() -> Response:
    return _text(delivery.apply(current_app.extensions["gateway"].runtime, at.parse_delivery(request.form)))


@bp.post("/ussd/events")
def ussd_event() -> Response:
    """End-of-session notification. Acknowledged and nothing more: an Africa's Talking session
    keeps no state between hops (its `text` carries every input), so there is nothing to clear."""
    return _text("ok")
