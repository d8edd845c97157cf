"""The 8x8 channel, the second adapter: documented payloads through the adapter and the
webhooks, its send answers through the provider, and the configuration that selects it."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import yaml
from fake_8x8 import Fake8x8
from sqlalchemy import func, select

from gateway.channels import sms8x8 as adapter
from gateway.channels import sms8x8 as sender
from gateway.channels.africastalking import AfricasTalkingProvider
from gateway.channels.base import REJECTED, RETRY, SENT
from gateway.channels.sink import SinkProvider
from gateway.settings import Settings
from gateway.store.models import InboundMessage, Message

PAYLOADS = Path(__file__).parent / "payloads"
SMS = yaml.safe_load((PAYLOADS / "8x8_sms.yaml").read_text())
DELIVERY = yaml.safe_load((PAYLOADS / "8x8_delivery.yaml").read_text())
SEND = yaml.safe_load((PAYLOADS / "8x8_send.yaml").read_text())
DESK = "+6281277776666"


@pytest.mark.parametrize("case", SMS, ids=[c["name"] for c in SMS])
def test_sms_adapter_reads_documented_payloads(case):
    expect = case["expect"]
    if "status" in expect:
        with pytest.raises(adapter.BadCallback) as raised:
            adapter.parse_sms(case["body"])
        assert str(raised.value) == expect["text"]
        return
    sms = adapter.parse_sms(case["body"])
    assert (sms.channel, sms.provider_id, sms.sender, sms.text) == (
        "8x8-sms", expect["provider_id"], expect["sender"], expect["text"])


@pytest.mark.parametrize("case", DELIVERY, ids=[c["name"] for c in DELIVERY])
def test_delivery_adapter_reads_documented_payloads(case):
    expect = case["expect"]
    if "status" in expect and expect["status"] == 400:
        with pytest.raises(adapter.BadCallback) as raised:
            adapter.parse_delivery(case["body"])
        assert str(raised.value) == expect["text"]
        return
    report = adapter.parse_delivery(case["body"])
    assert (report.state, report.status, report.reason) == (expect["state"], expect["status"], expect.get("reason"))


@pytest.mark.parametrize("case", SEND, ids=[c["name"] for c in SEND])
def test_send_answers_map_to_a_closed_set(case):
    result = sender.interpret(case["status"], case["body"])
    expect = case["expect"]
    assert result.outcome == expect["outcome"]
    assert result.provider_message_id == expect.get("provider_message_id")
    assert result.status_code == expect.get("status_code")
    assert result.reason == expect.get("reason")


def _count(runtime, model) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("case", SMS, ids=[c["name"] for c in SMS])
def test_sms_webhook_answers_documented_payloads(case, client, runtime):
    response = client.post("/8x8/sms", json=case["body"])
    expect = case["expect"]
    if "status" in expect:
        assert (response.status_code, response.get_data(as_text=True)) == (400, expect["text"])
        assert _count(runtime, InboundMessage) == 0
        return
    stored = expect["sender"] is not None
    assert (response.status_code, response.get_data(as_text=True)) == (200, "new" if stored else "ignored")
    assert _count(runtime, InboundMessage) == int(stored)


def test_a_retried_callback_changes_nothing(client, runtime):
    answers = [client.post("/8x8/sms", json=SMS[0]["body"]).get_data(as_text=True) for _ in range(3)]
    assert answers == ["new", "duplicate", "duplicate"]
    with runtime.db.session() as session:
        stored = session.scalar(select(InboundMessage))
        assert stored.channel == "8x8-sms" and "Sekayu" not in stored.text_enc  # encrypted at rest


def test_body_that_is_not_json_is_refused(client):
    response = client.post("/8x8/sms", data="namespace=SMS", content_type="application/x-www-form-urlencoded")
    assert (response.status_code, response.get_data(as_text=True)) == (400, "expected a JSON object")


def test_deeply_nested_json_is_refused_not_an_error(client):
    body = "[" * 5000 + "]" * 5000  # deeper than the parser recurses, under the size limit
    for path in ("/8x8/sms", "/8x8/delivery"):
        response = client.post(path, data=body, content_type="application/json")
        assert (response.status_code, response.get_data(as_text=True)) == (400, "expected a JSON object")


def test_a_lone_surrogate_in_the_text_is_stored_replaced(client, runtime):
    """JSON may escape half of a UTF-16 pair (`\\ud800`), which no encoding can store: the SMS is
    kept with U+FFFD in its place instead of failing (8x8 would retry, then lose it)."""
    raw = ('{"namespace": "SMS", "eventType": "inbound_message_received", "payload": {"umid": "8x8-sur-1", '
           '"source": "+6281298765432", "body": "LAPOR \\ud800 di Muba \\ud83d\\ude00"}}')
    response = client.post("/8x8/sms", data=raw, content_type="application/json")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "new")
    with runtime.db.session() as session:
        stored = runtime.vault.decrypt(session.scalar(select(InboundMessage.text_enc)))
    assert stored == "LAPOR \ufffd di Muba \U0001f600"  # a whole pair is one character, kept


@pytest.mark.parametrize("state", [["delivered"], {"delivered": True}, 5, None])
def test_a_status_state_that_is_not_a_word_is_refused(client, state):
    body = {"namespace": "SMS", "eventType": "outbound_message_status_changed",
            "payload": {"umid": "8x8-d-odd", "status": {"state": state}}}
    response = client.post("/8x8/delivery", json=body)
    assert response.status_code == 400 and "status.state" in response.get_data(as_text=True)


def test_delivery_receipt_moves_the_message_it_names(client, runtime):
    with runtime.db.session() as session:
        session.add(Message(purpose="alert", state="sent", provider="8x8", provider_message_id="8x8-d-0002",
                            to_enc="x", to_index="x", body_enc="x"))
    response = client.post("/8x8/delivery", json=DELIVERY[1]["body"])
    assert (response.status_code, response.get_data(as_text=True)) == (200, "delivered")
    with runtime.db.session() as session:
        assert session.scalar(select(Message.delivery_status)) == "delivered"


def test_every_8x8_url_needs_the_token(settings_overrides):
    from gateway import create_app

    app = create_app({**settings_overrides, "webhook_token": "s3cret-token-value"})
    client = app.test_client()
    assert client.post("/8x8/sms", json=SMS[0]["body"]).status_code == 403
    assert client.post("/8x8/delivery", json=DELIVERY[0]["body"]).status_code == 403
    assert client.post("/8x8/sms?token=s3cret-token-value", json=SMS[0]["body"]).status_code == 200
    app.extensions["gateway"].runtime.db.dispose()


def test_database_down_gets_503_so_8x8_retries(settings_overrides, tmp_path):
    from gateway import create_app

    app = create_app({**settings_overrides, "database_url": f"sqlite:///{tmp_path / 'not-migrated.db'}"})
    assert app.test_client().post("/8x8/sms", json=SMS[0]["body"]).status_code == 503
    assert app.test_client().post("/8x8/delivery", json=DELIVERY[0]["body"]).status_code == 503
    app.extensions["gateway"].runtime.db.dispose()


@pytest.fixture
def fake_8x8():
    with Fake8x8() as fake:
        yield fake


def _provider(fake, key=None):
    return sender.Sms8x8Provider(key or fake.api_key, fake.subaccount_id, "TPPO", fake.base_url)


def test_provider_sends_through_the_fake(fake_8x8):
    result = _provider(fake_8x8).send(DESK, "TPPO K7Q2MX: uji")
    [sent] = fake_8x8.messages
    assert (result.outcome, result.provider_message_id) == (SENT, sent["umid"])
    assert (sent["to"], sent["message"], sent["from"]) == (DESK, "TPPO K7Q2MX: uji", "TPPO")


def test_provider_rejects_a_refused_number_for_good(fake_8x8):
    fake_8x8.reject_number(DESK)
    result = _provider(fake_8x8).send(DESK, "hello")
    assert (result.outcome, result.status_code) == (REJECTED, 1002) and not fake_8x8.messages


def test_wrong_key_is_retried_loudly_and_never_logged(fake_8x8, caplog):
    secret = "wrong-key-that-must-not-leak"
    with caplog.at_level(logging.DEBUG):
        result = _provider(fake_8x8, key=secret).send(DESK, "hello")
    assert (result.outcome, result.status_code) == (RETRY, 1200)
    assert "SMS8X8_API_KEY" in caplog.text and secret not in caplog.text


def test_outage_and_unreachable_api_are_retried(fake_8x8):
    fake_8x8.fail_next(1, 503)
    assert _provider(fake_8x8).send(DESK, "hello").outcome == RETRY
    unreachable = sender.Sms8x8Provider("k", "tppo-sumsel", api_url="http://127.0.0.1:9")
    assert unreachable.send(DESK, "hello").outcome == RETRY


@pytest.mark.parametrize("env, provider", [
    ({}, SinkProvider),
    ({"AT_API_KEY": "k"}, AfricasTalkingProvider),
    ({"AT_API_KEY": "k", "SMS_PROVIDER": "sink"}, SinkProvider),
    ({"SMS_PROVIDER": "8x8", "SMS8X8_API_KEY": "k", "SMS8X8_SUBACCOUNT_ID": "tppo"}, sender.Sms8x8Provider),
], ids=["nothing set", "AT key", "sink chosen", "8x8 chosen"])
def test_sms_provider_setting_chooses_the_provider(settings_overrides, env, provider):
    from gateway.runtime import build_runtime

    settings = Settings.from_env(env, **settings_overrides)
    assert isinstance(build_runtime(settings).provider, provider)


@pytest.mark.parametrize("env, problem", [
    ({"SMS_PROVIDER": "kannel"}, "SMS_PROVIDER must be one of africastalking, 8x8, sink, not 'kannel'"),
    ({"SMS_PROVIDER": "8x8", "SMS8X8_API_KEY": "k"}, "SMS_PROVIDER=8x8 needs SMS8X8_API_KEY and SMS8X8_SUBACCOUNT_ID"),
    ({"SMS_PROVIDER": "africastalking"}, "SMS_PROVIDER=africastalking needs AT_API_KEY"),
])
def test_an_incomplete_provider_setting_refuses_to_start(env, problem):
    assert problem in Settings.from_env(env).problems()


def test_an_8x8_account_is_live_so_the_demo_roster_is_refused():
    settings = Settings.from_env({"SMS_PROVIDER": "8x8", "SMS8X8_API_KEY": "k", "SMS8X8_SUBACCOUNT_ID": "tppo"})
    assert settings.sms_is_live and not settings.demo_roster_allowed


def test_the_conversation_and_the_jobs_know_nothing_of_8x8():
    """The second adapter proves the design only if the engine and the worker stayed as they were:
    all of 8x8 lives in its channel module, the channel registry and the settings."""
    root = Path(__file__).resolve().parent.parent
    sources = [p for folder in ("flows", "workers", "gateway/intake", "gateway/cases", "gateway/messaging")
               for p in (root / folder).rglob("*.py")]
    assert sources
    assert [str(p.relative_to(root)) for p in sources if re.search(r"8x8", p.read_text(), re.I)] == []
