"""The Africa's Talking SMS and delivery-report callbacks: real payloads through the adapter
and the webhooks, retried callbacks, and any text at all."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inline_jobs import drain
from sqlalchemy import func, select

from gateway.channels import africastalking as at
from gateway.store.models import InboundMessage, Message, Outbox

PAYLOADS = Path(__file__).parent / "payloads"
SMS = yaml.safe_load((PAYLOADS / "at_sms.yaml").read_text())
DELIVERY = yaml.safe_load((PAYLOADS / "at_delivery.yaml").read_text())
FORM = "application/x-www-form-urlencoded; charset=UTF-8"


def form(body: str) -> dict:
    return dict(parse_qsl(body, keep_blank_values=True))


@pytest.mark.parametrize("case", SMS, ids=[c["name"] for c in SMS])
def test_sms_adapter_reads_real_payloads(case):
    expect = case["expect"]
    if "status" in expect:
        with pytest.raises(at.BadCallback, match=expect["text"]):
            at.parse_sms(form(case["body"]))
        return
    sms = at.parse_sms(form(case["body"]))
    assert (sms.provider_id, sms.sender, sms.text) == (expect["provider_id"], expect["sender"], expect["text"])


@pytest.mark.parametrize("case", DELIVERY, ids=[c["name"] for c in DELIVERY])
def test_delivery_adapter_reads_real_payloads(case):
    expect = case["expect"]
    if "status" in expect and expect["status"] == 400:
        with pytest.raises(at.BadCallback) as raised:
            at.parse_delivery(form(case["body"]))
        assert str(raised.value).startswith(expect["text"])
        return
    report = at.parse_delivery(form(case["body"]))
    assert (report.state, report.status, report.reason) == (expect["state"], expect["status"], expect.get("reason"))


def _count(runtime, model) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("case", SMS, ids=[c["name"] for c in SMS])
def test_sms_webhook_answers_real_payloads(case, client, runtime):
    response = client.post("/at/sms", data=case["body"], content_type=FORM)
    expect = case["expect"]
    if "status" in expect:
        assert (response.status_code, response.get_data(as_text=True)) == (400, expect["text"])
        assert _count(runtime, InboundMessage) == 0
    else:
        stored = expect["sender"] is not None
        assert response.status_code == 200
        assert response.get_data(as_text=True) == ("new" if stored else "ignored")
        assert _count(runtime, InboundMessage) == int(stored)


def test_a_retried_callback_changes_nothing(client, runtime):
    body = SMS[0]["body"]
    answers = [client.post("/at/sms", data=body, content_type=FORM) for _ in range(3)]
    assert [(a.status_code, a.get_data(as_text=True)) for a in answers] == [
        (200, "new"), (200, "duplicate"), (200, "duplicate")]
    assert _count(runtime, InboundMessage) == 1 and _count(runtime, Outbox) == 1
    with runtime.db.session() as session:
        stored = session.scalar(select(InboundMessage))
        assert "Sekayu" not in stored.text_enc and "+62812" not in stored.sender_enc  # encrypted at rest
        assert runtime.vault.decrypt(stored.text_enc) == "LAPOR ada calo di Sekayu"


def test_sms_webhook_needs_the_token(settings_overrides):
    from gateway import create_app

    app = create_app({**settings_overrides, "webhook_token": "s3cret-token-value"})
    client = app.test_client()
    for path in ("/at/sms", "/at/delivery", "/at/ussd/events"):
        assert client.post(path, data=SMS[0]["body"], content_type=FORM).status_code == 403
    assert client.post("/at/sms?token=s3cret-token-value", data=SMS[0]["body"], content_type=FORM).status_code == 200
    app.extensions["gateway"].runtime.db.dispose()


def test_database_down_gets_503_so_the_aggregator_retries(settings_overrides, tmp_path):
    from gateway import create_app

    app = create_app({**settings_overrides, "database_url": f"sqlite:///{tmp_path / 'not-migrated.db'}"})
    response = app.test_client().post("/at/sms", data=SMS[0]["body"], content_type=FORM)
    assert response.status_code == 503
    assert app.test_client().post("/at/delivery", data=DELIVERY[0]["body"], content_type=FORM).status_code == 503


def test_delivery_report_for_an_unknown_message_is_acknowledged(client):
    response = client.post("/at/delivery", data=DELIVERY[0]["body"], content_type=FORM)
    assert (response.status_code, response.get_data(as_text=True)) == (200, "unknown message")


def test_delivery_reports_move_a_message_forward_only(client, runtime):
    with runtime.db.session() as session:
        session.add(Message(purpose="reply", state="sent", provider_message_id="ATXid_0001", to_enc="x",
                            to_index="x", body_enc="x"))
    post = lambda status: client.post("/at/delivery", data=f"id=ATXid_0001&status={status}",  # noqa: E731
                                      content_type=FORM).get_data(as_text=True)
    assert post("Buffered") == "sent"
    assert post("Success") == "delivered"
    assert post("Sent") == "recorded"  # late and out of order: recorded, state kept
    with runtime.db.session() as session:
        message = session.scalar(select(Message))
        assert (message.state, message.delivery_status) == ("delivered", "Sent")


def test_end_of_session_event_is_acknowledged(client):
    body = urlencode({"sessionId": "ATUid_1", "status": "Incomplete", "phoneNumber": "+6281234567890",
                      "hopsCount": "3", "input": "1*1", "durationInMillis": "20000", "date": "2026-11-28 10:15:00"})
    assert client.post("/at/ussd/events", data=body, content_type=FORM).status_code == 200


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=400), sender=st.sampled_from(["+6281298765432", "+6281234567890", "TELKOMSEL", ""]))
def test_any_text_gets_200_or_400_and_at_most_one_reply(client, runtime, monkeypatch, text, sender):
    sms_id = f"ATSMS_{abs(hash((text, sender))) % 10**12}"
    response = client.post("/at/sms", data={"from": sender, "id": sms_id, "text": text, "to": "12345"})
    assert response.status_code in (200, 400)
    drain(runtime, monkeypatch)
    with runtime.db.session() as session:
        inbound = session.scalar(select(InboundMessage).where(InboundMessage.provider_id == sms_id))
        if inbound is not None:
            replies = session.scalar(select(func.count()).select_from(Message)
                                     .where(Message.inbound_id == inbound.id))
            assert replies <= 1 and inbound.handled_at is not None
