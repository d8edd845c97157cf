"""End to end on real parts: Flask app, a real redis-server, a real RQ worker process, and the
africastalking SDK sending to a local fake of the Africa's Talking API."""
from __future__ import annotations

import time

import pytest
from phone import Phone, flask_transport
from sqlalchemy import select

from gateway.cases import roster
from gateway.store.models import AuditEvent, Message, Report

pytestmark = pytest.mark.slow

REPORTER = "+6281298765432"
# job fraud, woman, OKI (item 10, on the second page), nobody in danger, consent as given, send
KEYS = ["1", "1", "1", "98", "10", "2", "{consent}", "1"]


def _report(client, consent: str) -> str:
    phone = Phone(flask_transport(client), number=REPORTER)
    screens = phone.run([k.format(consent=consent) for k in KEYS])
    assert screens[-1].startswith("END ")
    return screens[-1].split("Kode: ")[1][:6]


@pytest.fixture
def responders(runtime):
    oki = roster.add(runtime, "polres_oki", "Piket Polres OKI", roster.demo_number(2))
    other = roster.add(runtime, "polres_palembang", "Piket Polrestabes", roster.demo_number(14))
    province = roster.add(runtime, "polda_ppa_ppo", "Piket Polda", roster.demo_number(23))
    return {"oki": oki.phone, "other": other.phone, "province": province.phone}


@pytest.mark.parametrize("consent, shows_number", [("2", False), ("1", True)], ids=["no consent", "consent"])
def test_report_reaches_the_right_agency_once(client, runtime, responders, fake_at, start_worker,
                                              consent, shows_number):
    ref = _report(client, consent)
    start_worker()
    messages = fake_at.wait_for(1, timeout=20)
    time.sleep(1.0)  # anything more would arrive now
    messages = fake_at.messages
    assert len(messages) == 1, messages
    alert = messages[0]
    assert alert["to"] == responders["oki"] and alert["username"] == "tppo-test"
    body = alert["message"]
    assert body.startswith(f"TPPO {ref}: Penipuan kerja, korban perempuan, OKI.") and len(body) <= 160
    assert (REPORTER in body) is shows_number
    assert ("tidak dihubungi" in body) is not shows_number
    with runtime.db.session() as session:
        report = session.scalar(select(Report).where(Report.ref == ref))
        assert report.status == "routed"
        message = session.scalar(select(Message).where(Message.report_id == report.id))
        assert message.state == "sent" and message.provider == "africastalking"
        assert message.provider_message_id == alert["message_id"]
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.report_id == report.id)).all()
        assert {"received", "routed", "alert_sent"} <= set(actions)


def test_report_filed_while_no_worker_runs_is_alerted_when_one_starts(client, runtime, responders, fake_at,
                                                                       start_worker, redis_url):
    """The outbox survives Redis losing the job: the worker's start-up reconciler re-enqueues it."""
    import redis

    ref = _report(client, "2")
    redis.Redis.from_url(redis_url).flushdb()  # Redis restarted empty
    start_worker()
    messages = fake_at.wait_for(1, timeout=20)
    assert [m["to"] for m in messages] == [responders["oki"]] and ref in messages[0]["message"]
