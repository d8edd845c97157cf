"""8x8 callbacks (`/8x8/sms`, `/8x8/delivery`), behind the same token check as `/at/*`.
Provider specifics stay in gateway.channels.sms8x8; storing is shared with Africa's Talking.

Both only record and answer 200 at once; while the database is down they answer 503, and
8x8 retries instead of the message being lost."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from .. import delivery, inbox
from ..channels import sms8x8
from .auth import require_token

log = logging.getLogger(__name__)

bp = Blueprint("sms8x8", __name__, url_prefix="/8x8")
bp.before_request(require_token)


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _body():
    """8x8 sends JSON; the content type is not trusted to say so. A body nested deeper than the
    parser can recurse is no callback either: refused like any other body that is not an object."""
    try:
        return request.get_json(force=True, silent=True)
    except RecursionError:
        return None


@bp.errorhandler(sms8x8.BadCallback)
def _bad_callback(exc: sms8x8.BadCallback) -> Response:
    return _text(str(exc), 400)


@bp.errorhandler(SQLAlchemyError)
def _database_down(exc: SQLAlchemyError) -> Response:
    log.error("callback %s not stored: %s", request.path, type(exc).__name__)
    return _text("temporarily unavailable, retry", 503)


@bp.post("/sms")
def sms() -> Response:
    return _text(inbox.receive(current_app.extensions["gateway"].runtime, sms8x8.parse_sms(_body())))


@bp.post("/delivery")
def delivery_report() -> Response:
    return _text(delivery.apply(current_app.extensions["gateway"].runtime, sms8x8.parse_delivery(_body())))
