"""Liveness and readiness. /readyz names what is down, so an operator knows where to look."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    gw = current_app.extensions["gateway"]
    checks = {}
    try:
        gw.runtime.db.ping()
        checks["database"] = "ok"
    except SQLAlchemyError:
        checks["database"] = "down"
    try:
        gw.runtime.redis.ping()
        checks["redis"] = "ok"
    except RedisError:
        checks["redis"] = "down"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
