"""GET /metrics in the Prometheus text format.

The web server runs several worker processes and RQ workers run apart, so nothing here lives in a
process's memory (prometheus_client's multiprocess mode would need PROMETHEUS_MULTIPROC_DIR
set before import and a server hook to clean up after dead workers). Instead:

- webhook latency is counted in Redis by every web process, as the histogram's buckets per
  route. Each process adds up its callbacks in memory and writes them in one pipelined round
  trip at most once a second (FLUSH_SECONDS), and before answering a scrape: a Redis write per
  callback was a fifth of a USSD hop's cost (`make bench`). A process that dies loses at most
  its last second of counts; errors are ignored, so a metric never costs a callback;
- everything else is read at scrape time from the record itself: reports by status, SMS by
  state, escalations (audit rows), open outbox entries, and the RQ queue and registries.

So every scrape, whichever process answers it, sees the same figures, and a restart loses
nothing but what Redis loses. When the database or Redis cannot be read, their metrics are
left out and `gateway_metrics_source_up{source=...}` says 0."""
from __future__ import annotations

import hmac
import logging
import threading
import time
from bisect import bisect_left
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from gateway.channels.registry import WEBHOOK_NAMES
from gateway.limits import HELD_BY_BUDGET_KEY
from gateway.store.models import AuditEvent, Message, Outbox, Report

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

# seconds; Africa's Talking drops a USSD answer after about 10 s
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUTES_KEY = "metrics:webhook:routes"
ROUTE_KEY = "metrics:webhook:{}"

bp = Blueprint("metrics", __name__)


FLUSH_SECONDS = 1.0
_LE = tuple(repr(le) for le in WEBHOOK_BUCKETS) + ("+Inf",)


class _Pending:
    """This process's webhook counts not yet written to Redis: per route, the count, the sum,
    a count per bucket (the one each callback falls in, not yet cumulative) and per status."""

    def __init__(self):
        self.lock = threading.Lock()
        self.routes: dict[str, list] = {}  # route -> [count, sum, [per bucket], {status: n}]
        self.flushed_at = time.monotonic()

    def add(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            counts = self.routes.get(route)
            if counts is None:
                counts = self.routes[route] = [0, 0.0, [0] * len(_LE), {}]
            counts[0] += 1
            counts[1] += seconds
            counts[2][bisect_left(WEBHOOK_BUCKETS, seconds)] += 1
            counts[3][status] = counts[3].get(status, 0) + 1

    def record(self, route: str, status: int, seconds: float, redis) -> None:
        """`add`, and the counts written once a second."""
        self.add(route, status, seconds)
        if time.monotonic() - self.flushed_at >= FLUSH_SECONDS:
            self.flush(redis)

    def flush(self, redis) -> None:
        with self.lock:
            routes, self.routes, self.flushed_at = self.routes, {}, time.monotonic()
        if not routes:
            return
        try:
            with redis.pipeline(transaction=False) as pipe:
                pipe.sadd(ROUTES_KEY, *routes)
                for route, (count, total, buckets, statuses) in routes.items():
                    key = ROUTE_KEY.format(route)
                    pipe.hincrby(key, "count", count)
                    pipe.hincrbyfloat(key, "sum", total)
                    for le, n in zip(_LE, buckets, strict=True):
                        if n:
                            pipe.hincrby(key, f"le:{le}", n)
                    for status, n in statuses.items():
                        pipe.hincrby(key, f"status:{status}", n)
                pipe.execute()
        except RedisError as exc:
            log.debug("webhook metrics not recorded: %s", type(exc).__name__)


def _pending() -> _Pending:
    """The app's buffer: one per app (so per process), never shared between apps."""
    return current_app.extensions["webhook_metrics"]


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _finish(response: Response) -> Response:
    if request.blueprint in WEBHOOK_NAMES and request.url_rule is not None and "metrics_started" in g:
        seconds = time.perf_counter() - g.metrics_started
        _pending().record(request.url_rule.rule, response.status_code, seconds,
                          current_app.extensions["gateway"].runtime.redis)
    return response


class GatewayCollector:
    """Reads every figure when Prometheus scrapes (see the module docstring for why)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def collect(self):
        up = GaugeMetricFamily("gateway_metrics_source_up", "Whether a source could be read for this scrape",
                               labels=["source"])
        for source, read in (("redis", self._redis), ("database", self._database)):
            try:
                families = list(read())
            except (RedisError, SQLAlchemyError) as exc:
                log.warning("metrics: %s unreadable: %s", source, type(exc).__name__)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _redis(self):
        redis, queue = self.runtime.redis, self.runtime.queue
        _pending().flush(redis)  # this process's latest counts, so a scrape sees every answered callback
        latency = HistogramMetricFamily("gateway_webhook_duration_seconds",
                                        "Time to answer an aggregator's callback", labels=["route"])
        responses = CounterMetricFamily("gateway_webhook_responses", "Callbacks answered, by HTTP status",
                                        labels=["route", "status"])
        for route in sorted(r.decode() for r in redis.smembers(ROUTES_KEY)):
            fields = {k.decode(): v.decode() for k, v in redis.hgetall(ROUTE_KEY.format(route)).items()}
            running, buckets = 0, []
            for le in WEBHOOK_BUCKETS:
                running += int(fields.get(f"le:{le!r}", 0))
                buckets.append((repr(le), running))
            buckets.append(("+Inf", int(fields.get("count", 0))))
            latency.add_metric([route], buckets, float(fields.get("sum", 0)))
            for name, value in fields.items():
                if name.startswith("status:"):
                    responses.add_metric([route, name.split(":", 1)[1]], int(value))
        held = CounterMetricFamily("gateway_sms_held_by_budget",
                                   "SMS to residents held back by LIMIT_SMS_SENT_PER_MINUTE (sent in a later minute)")
        held.add_metric([], int(redis.get(HELD_BY_BUDGET_KEY) or 0))
        depth = GaugeMetricFamily("gateway_queue_jobs", "RQ jobs by state", labels=["queue", "state"])
        depth.add_metric([queue.name, "queued"], queue.count)
        for state, registry in (("started", queue.started_job_registry), ("scheduled", queue.scheduled_job_registry),
                                ("deferred", queue.deferred_job_registry), ("failed", queue.failed_job_registry)):
            depth.add_metric([queue.name, state], redis.zcard(registry.key))
        return latency, responses, held, depth

    def _database(self):
        with self.runtime.db.session() as session:
            reports = GaugeMetricFamily("gateway_reports", "Reports by status (outcome so far)", labels=["status"])
            for status, n in session.execute(select(Report.status, func.count()).group_by(Report.status)):
                reports.add_metric([status], n)
            sms = GaugeMetricFamily("gateway_sms_messages", "Outgoing SMS by purpose and state",
                                    labels=["purpose", "state"])
            for purpose, state, n in session.execute(select(Message.purpose, Message.state, func.count())
                                                     .group_by(Message.purpose, Message.state)):
                sms.add_metric([purpose, state], n)
            steps = dict(session.execute(select(AuditEvent.action, func.count())
                                         .where(AuditEvent.action.in_(("escalated", "unanswered")))
                                         .group_by(AuditEvent.action)).all())
            escalations = CounterMetricFamily("gateway_escalations",
                                              "Assignments escalated for lack of acknowledgement")
            escalations.add_metric([], steps.get("escalated", 0))
            unanswered = CounterMetricFamily("gateway_unanswered", "Assignments left unanswered at the top of a chain")
            unanswered.add_metric([], steps.get("unanswered", 0))
            owed = GaugeMetricFamily("gateway_outbox_open", "Jobs the database still owes to the queue",
                                     labels=["job"])
            for job, n in session.execute(select(Outbox.job, func.count()).where(Outbox.done_at.is_(None))
                                          .group_by(Outbox.job)):
                owed.add_metric([job], n)
        return reports, sms, escalations, unanswered, owed


@bp.get("/metrics")
def metrics() -> Response:
    gateway = current_app.extensions["gateway"]
    expected = gateway.settings.metrics_token
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return Response("METRICS_TOKEN is set: send it as `Authorization: Bearer <token>`\n", status=401,
                            mimetype="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway.runtime))
    # the classic text format (0.0.4), which every Prometheus version reads; the names need no escaping
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def init_app(app) -> None:
    app.extensions["webhook_metrics"] = _Pending()
    app.before_request(_start)
    app.after_request(_finish)
    app.register_blueprint(bp)
