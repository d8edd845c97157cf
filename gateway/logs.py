"""Logs that are safe to keep: one filter masks phone numbers in every record, whatever
logger wrote it, and the request log never includes a query string (it carries the token).

Every record also carries the id of the work it belongs to (the web request's X-Request-Id,
or the RQ job's id in a worker), so one report can be followed from webhook to alert. In
production the lines are JSON, one object per line, for a log collector to index."""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

from flask import g, has_app_context
from rq import get_current_job

from gateway.phones import mask_numbers

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # a caller's X-Request-Id is kept only when harmless
# the id of a request answered outside Flask's contexts (gateway.web.fast_ussd)
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = mask_numbers(message), None
        record.request_id = current_work_id()
        return True


def request_id(header: str | None) -> str:
    """The id of a web request: the proxy's X-Request-Id when it is a plain token, else a new one."""
    return header if header and _CLIENT_ID.match(header) else os.urandom(8).hex()


def current_work_id() -> str:
    if has_app_context() and g.get("request_id"):
        return g.request_id
    if REQUEST_ID.get():
        return REQUEST_ID.get()
    job = get_current_job()
    return job.id if job else "-"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        return json.dumps({"time": at, "level": record.levelname, "logger": record.name,
                           "request_id": record.request_id, "message": record.getMessage()}, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


APP_LOGGERS = ("gateway", "workers", "flows")


def configure(json_lines: bool = False, level: int = logging.INFO) -> None:
    """Install one redacting handler on the root logger (idempotent), at LOG_LEVEL."""
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    set_level(level)


def set_level(level: int) -> None:
    """`debug` is for the gateway's own lines (each routine aggregator callback, among others);
    libraries stay at INFO or above, so their debug output (HTTP connections, SQL) stays out."""
    logging.getLogger().setLevel(max(level, logging.INFO))
    for name in APP_LOGGERS:
        logging.getLogger(name).setLevel(level)
