"""GET /metrics as Prometheus scrapes it: parsed with prometheus_client's own parser, so a
malformed exposition fails here and not on the monitoring server."""
from __future__ import annotations

import pytest
from conftest import free_port
from console_seed import seed_cases
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from gateway import create_app
from gateway.cases import dispatch
from gateway.console import metrics
from gateway.messaging.jobs import JOBS, JobName
from gateway.store.models import Message, Outbox, Report

USSD = {"sessionId": "ATUid_metrics", "serviceCode": "*123#", "phoneNumber": "+6281298765432",
        "networkCode": "51010", "text": ""}


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "version=0.0.4" in response.headers["Content-Type"]
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_webhook_latency_histogram_by_route(client):
    for _ in range(3):
        assert client.post("/at/ussd", data=USSD).status_code == 200
    assert client.post("/at/delivery", data={"id": "nope", "status": "Teleported"}).status_code == 400
    samples = scrape(client)
    assert value(samples, "gateway_webhook_duration_seconds_count", route="/at/ussd") == 3
    assert value(samples, "gateway_webhook_duration_seconds_bucket", route="/at/ussd", le="+Inf") == 3
    assert value(samples, "gateway_webhook_duration_seconds_sum", route="/at/ussd") > 0
    buckets = [value(samples, "gateway_webhook_duration_seconds_bucket", route="/at/ussd", le=str(le))
               for le in metrics.WEBHOOK_BUCKETS]
    assert buckets == sorted(buckets) and buckets[-1] <= 3  # cumulative
    assert value(samples, "gateway_webhook_responses_total", route="/at/ussd", status="200") == 3
    assert value(samples, "gateway_webhook_responses_total", route="/at/delivery", status="400") == 1
    assert not [k for k in samples if dict(k[1]).get("route", "").startswith(("/metrics", "/console", "/healthz"))]


def test_callbacks_are_counted_in_memory_and_written_once_a_second(client, runtime, monkeypatch):
    """No Redis write per callback: counts reach Redis in one pipeline per FLUSH_SECONDS, and a
    scrape first writes what its own process still holds."""
    monkeypatch.setattr(metrics, "FLUSH_SECONDS", 3600.0)
    # the first callback flushes (not 0.0: on a machine up for less than FLUSH_SECONDS, the
    # monotonic clock itself is below it)
    client.application.extensions["webhook_metrics"].flushed_at = float("-inf")
    for _ in range(4):
        assert client.post("/at/ussd", data=USSD).status_code == 200
    key, r = metrics.ROUTE_KEY.format("/at/ussd"), runtime.redis
    assert int(r.hget(key, "count")) == 1  # the first; the next three wait in memory
    assert value(scrape(client), "gateway_webhook_duration_seconds_count", route="/at/ussd") == 4
    assert int(r.hget(key, "count")) == 4


def test_reports_sms_escalations_and_work_owed(client, runtime):
    seeded = seed_cases(runtime)
    with runtime.db.session() as session:
        oki = session.scalar(select(Report).where(Report.ref == seeded.oki_ref))
        oki.status = "acknowledged"
        session.scalar(select(Message).where(Message.report_id == oki.id)).state = "failed"
        dispatch.audit(session, oki.id, "escalated", "polres_oki -> polda_ppa_ppo: no acknowledgement")
        session.add(Outbox(job="send_sms", target_id=1))
    samples = scrape(client)
    assert value(samples, "gateway_reports", status="acknowledged") == 1
    assert value(samples, "gateway_reports", status="routed") == 1
    assert value(samples, "gateway_sms_messages", purpose="alert", state="failed") == 1
    assert value(samples, "gateway_sms_messages", purpose="alert", state="delivered") == 1
    assert value(samples, "gateway_escalations_total") == 1
    assert value(samples, "gateway_unanswered_total") == 0
    assert value(samples, "gateway_outbox_open", job="send_sms") == 1
    assert value(samples, "gateway_metrics_source_up", source="database") == 1


def test_queue_depth(client, runtime):
    runtime.queue.enqueue(JOBS[JobName.ROUTE_REPORT].entry_point, 1)
    samples = scrape(client)
    assert value(samples, "gateway_queue_jobs", queue=runtime.queue.name, state="queued") == 1
    assert value(samples, "gateway_queue_jobs", queue=runtime.queue.name, state="failed") == 0
    assert value(samples, "gateway_metrics_source_up", source="redis") == 1


def test_metrics_carry_no_personal_data(client, runtime):
    seed_cases(runtime)
    client.post("/at/ussd", data=USSD)
    body = client.get("/metrics").get_data(as_text=True)
    assert "+62" not in body and "6281" not in body and "Kayuagung" not in body


@pytest.mark.parametrize("authorization, status", [
    (None, 401), ("Bearer wrong", 401), ("metrics-secret-0123456789", 401), ("Bearer metrics-secret-0123456789", 200),
])
def test_metrics_token_when_set(settings_overrides, authorization, status):
    app = create_app({**settings_overrides, "metrics_token": "metrics-secret-0123456789"})
    try:
        headers = {"Authorization": authorization} if authorization else {}
        response = app.test_client().get("/metrics", headers=headers)
        assert response.status_code == status
        assert (response.headers.get("WWW-Authenticate") == 'Bearer realm="metrics"') is (status == 401)
    finally:
        app.extensions["gateway"].runtime.db.dispose()


def test_a_source_that_is_down_is_named_and_the_rest_still_served(settings_overrides):
    app = create_app({**settings_overrides, "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        client = app.test_client()
        assert client.post("/at/ussd", data=USSD).status_code == 200  # a lost metric never costs a callback
        samples = scrape(client)
        assert value(samples, "gateway_metrics_source_up", source="redis") == 0
        assert value(samples, "gateway_metrics_source_up", source="database") == 1
        assert not [k for k in samples if k[0].startswith(("gateway_queue", "gateway_webhook"))]
    finally:
        app.extensions["gateway"].runtime.db.dispose()
