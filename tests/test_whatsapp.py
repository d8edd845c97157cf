"""The WhatsApp channel: Meta's documented payloads through the adapter, the signature and the
verification handshake, the 24-hour rule with its templates and SMS fallback, the USSD menu as
numbered messages, STOP across channels, all against local fakes of the Graph API and of
Africa's Talking, with the jobs run inline."""
from __future__ import annotations

import itertools
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from conftest import app_with, sandbox_at
from fake_whatsapp import FakeWhatsApp
from inline_jobs import drain, sms_texter
from sqlalchemy import func, select, update

from gateway.cases import roster
from gateway.channels import whatsapp as adapter
from gateway.channels.base import REJECTED, RETRY, SENT, DeliveryReport
from gateway.messaging import chat as chat_sending
from gateway.phones import mask_numbers
from gateway.settings import Settings
from gateway.store.models import InboundMessage, Message, Report

PAYLOADS = Path(__file__).parent / "payloads"
MESSAGES = yaml.safe_load((PAYLOADS / "whatsapp_messages.yaml").read_text())
STATUSES = yaml.safe_load((PAYLOADS / "whatsapp_statuses.yaml").read_text())
SECRET = "9f2c1e7a4b8d3f6a0c5e2b7d9a1f4c8e"
VERIFY = "verify-Qw3rTy-7uIoP-asDfGh-2jKlZx"
RESIDENT, NEIGHBOUR, DESK, SECOND_DESK = "+6281298765432", "+6281311112222", "+6281277776666", "+6281277775555"
REPORT_KEYS = ["1", "1", "1", "98", "10", "1", "1", "1"]  # as tests/golden/report_urgent_with_consent
_ids = itertools.count(1)


# -- the adapter, on the documented payloads --------------------------------------------------

@pytest.mark.parametrize("case", MESSAGES, ids=[c["name"] for c in MESSAGES])
def test_messages_adapter_reads_documented_payloads(case):
    expect = case["expect"]
    if isinstance(expect, dict):
        with pytest.raises(adapter.BadCallback) as raised:
            adapter.parse_webhook(case["body"], "106540352242922")
        assert str(raised.value) == expect["text"]
        return
    events = adapter.parse_webhook(case["body"], "106540352242922")
    assert [[e.kind, e.provider_id, e.sender, e.text] for e in events] == expect
    assert all(e.channel == "wa" for e in events)


@pytest.mark.parametrize("case", STATUSES, ids=[c["name"] for c in STATUSES])
def test_statuses_adapter_reads_documented_payloads(case):
    events = adapter.parse_webhook(case["body"], "106540352242922")
    assert all(isinstance(e, DeliveryReport) for e in events)
    assert [[e.state, e.status, e.reason] for e in events] == case["expect"]


@pytest.mark.parametrize("status, body, outcome, code", [
    (200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.X"}]}, SENT, 200),
    (400, {"error": {"code": 131047, "message": "Re-engagement message"}}, REJECTED, 131047),
    (400, {"error": {"code": 131026, "message": "Message undeliverable"}}, REJECTED, 131026),
    (400, {"error": {"code": 130429, "message": "Rate limit hit"}}, RETRY, 130429),
    (401, {"error": {"code": 190, "message": "Error validating access token"}}, RETRY, 190),
    (503, {}, RETRY, 503),
    (200, {}, RETRY, None),
], ids=["accepted", "outside window", "undeliverable", "throttled", "token", "outage", "unreadable"])
def test_send_answers_map_to_the_closed_set(status, body, outcome, code):
    result = adapter.interpret(status, body)
    assert (result.outcome, result.status_code) == (outcome, code)


# -- the app with WhatsApp pointed at the fake --------------------------------------------------

@pytest.fixture
def fake_wa():
    with FakeWhatsApp() as fake:
        yield fake


def wa_settings(fake_wa) -> dict:
    return {"whatsapp_token": fake_wa.token, "whatsapp_phone_number_id": fake_wa.phone_number_id,
            "whatsapp_app_secret": SECRET, "whatsapp_verify_token": VERIFY, "whatsapp_api_url": fake_wa.base_url}


@pytest.fixture
def app(settings_overrides, fake_at, fake_wa):
    """The app with both providers pointed at their fakes; conftest's `client` serves it."""
    with app_with({**settings_overrides, **sandbox_at(fake_at), **wa_settings(fake_wa)}) as app:
        yield app


@pytest.fixture
def rt(runtime):
    return runtime


def envelope(messages=(), statuses=()) -> dict:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "6281100001111", "phone_number_id": "106540352242922"}}
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}


def text_message(sender: str, text: str, wamid=None) -> dict:
    return envelope([{"from": sender.lstrip("+"), "id": wamid or f"wamid.T{next(_ids):06d}",
                      "timestamp": "1749416383", "type": "text", "text": {"body": text}}])


def signed_post(client, body, secret=SECRET, header=True):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-Hub-Signature-256": adapter.signature(raw, secret)} if header else {}
    return client.post("/wa/webhook", data=raw, content_type="application/json", headers=headers)


def count(rt, model) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


# -- signature and verification -------------------------------------------------------------------

def test_a_signed_callback_is_stored_once(client, rt):
    body = MESSAGES[1]["body"]
    answers = [signed_post(client, body) for _ in range(3)]
    assert [(a.status_code, a.get_data(as_text=True)) for a in answers] == [(200, "new"), (200, "duplicate"),
                                                                           (200, "duplicate")]
    with rt.db.session() as session:
        stored = session.scalar(select(InboundMessage))
        assert (stored.channel, stored.provider_id) == ("wa", "wamid.ID0001") and "Sekayu" not in stored.text_enc


@pytest.mark.parametrize("tamper", ["bad secret", "missing", "one byte changed", "empty header"])
def test_a_callback_without_the_right_signature_is_refused_before_reading(client, rt, tamper):
    raw = json.dumps(MESSAGES[1]["body"]).encode()
    headers = {"X-Hub-Signature-256": adapter.signature(raw, SECRET)}
    if tamper == "bad secret":
        headers["X-Hub-Signature-256"] = adapter.signature(raw, "another-secret")
    elif tamper == "missing":
        headers = {}
    elif tamper == "one byte changed":
        raw = raw.replace(b"Sekayu", b"Sekayv")
    else:
        headers["X-Hub-Signature-256"] = ""
    response = client.post("/wa/webhook", data=raw, content_type="application/json", headers=headers)
    assert (response.status_code, response.get_data(as_text=True)) == (403, "forbidden")
    assert count(rt, InboundMessage) == 0


def test_the_url_token_of_the_other_webhooks_is_not_what_guards_this_one(settings_overrides, fake_wa):
    from gateway import create_app

    app = create_app({**settings_overrides, **wa_settings(fake_wa), "webhook_token": "s3cret-token-value"})
    client = app.test_client()
    assert signed_post(client, MESSAGES[1]["body"]).status_code == 200  # signed, no ?token=
    assert client.post("/wa/webhook?token=s3cret-token-value", json=MESSAGES[1]["body"]).status_code == 403
    app.extensions["gateway"].runtime.db.dispose()


def test_without_an_app_secret_nothing_is_trusted(settings_overrides):
    from gateway import create_app

    app = create_app(settings_overrides)
    assert signed_post(app.test_client(), MESSAGES[1]["body"]).status_code == 403
    app.extensions["gateway"].runtime.db.dispose()


def test_unreadable_signed_bodies_get_400_and_a_database_down_503(client, settings_overrides, fake_wa, tmp_path):
    from gateway import create_app

    assert signed_post(client, b"not json").status_code == 400
    assert signed_post(client, MESSAGES[-2]["body"]).get_data(as_text=True) == MESSAGES[-2]["expect"]["text"]
    app = create_app({**settings_overrides, **wa_settings(fake_wa),
                      "database_url": f"sqlite:///{tmp_path / 'not-migrated.db'}"})
    assert signed_post(app.test_client(), MESSAGES[1]["body"]).status_code == 503
    app.extensions["gateway"].runtime.db.dispose()


@pytest.mark.parametrize("query, status, body", [
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}, 200, "1158201444"),
    ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"}, 403, "forbidden"),
    ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}, 403, "forbidden"),
    ({"hub.mode": "subscribe", "hub.challenge": "1158201444"}, 403, "forbidden"),
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "<script>"}, 403, "forbidden"),
], ids=["right token", "wrong token", "wrong mode", "no token", "odd challenge"])
def test_meta_verification_handshake(client, query, status, body):
    response = client.get("/wa/webhook", query_string=query)
    assert (response.status_code, response.get_data(as_text=True)) == (status, body)


# -- conversations ------------------------------------------------------------------------------

@pytest.fixture
def chat(client, rt, fake_wa, monkeypatch):
    """`chat(number)` returns a function that writes on WhatsApp and returns what came back there."""
    def make(number: str):
        def write(text: str) -> list:
            seen = len(fake_wa.messages)
            response = signed_post(client, text_message(number, text))
            assert response.status_code == 200, response.get_data(as_text=True)
            drain(rt, monkeypatch)
            return [m.get("text", m) for m in fake_wa.messages[seen:] if m["to"] == number.lstrip("+")]
        return write
    return make


@pytest.fixture
def sms(at_client, rt, fake_at, monkeypatch):
    def make(number: str):
        return sms_texter(at_client, rt, fake_at, monkeypatch, number)
    return make


@pytest.fixture
def at_client(client):
    return client


def test_keywords_and_plain_words_work_unchanged(chat, rt):
    write = chat(RESIDENT)
    assert write("TANDA")[0].startswith("Tanda bahaya:")
    filed = write("LAPOR anak saya dibawa calo ke Malaysia, paspor ditahan. Dari Kayuagung")
    assert filed[0].startswith("Terima kasih, sudah kami terima. Kode: ")
    with rt.db.session() as session:
        report = session.scalar(select(Report))
        assert (report.channel, report.region_code) == ("wa", "16.02")


def test_media_gets_one_polite_text_only_answer(client, rt, fake_wa, monkeypatch):
    signed_post(client, MESSAGES[2]["body"])
    drain(rt, monkeypatch)
    texts = [m["text"] for m in fake_wa.messages]
    assert texts == ["Maaf, layanan ini hanya membaca pesan teks. Ketik MENU untuk pilihan, atau tulis apa yang "
                     "terjadi dan di mana."]  # five kinds in one POST: answered once, not five times
    assert count(rt, Report) == 0


def test_menu_browse_and_exit_saves_nothing(chat, rt):
    write = chat(RESIDENT)
    assert write("Halo")[0].startswith("Aduan perdagangan orang\n1 Lapor rahasia")
    assert write("3")[0] != ""
    assert write("00") == ["Terima kasih."]
    assert count(rt, Report) == 0
    assert rt.redis.keys("menu:*") == []
    assert not write("1")[0].startswith("Aduan")  # the menu is closed: the desk answers


def test_menu_files_a_report_as_on_ussd(chat, rt, fake_at):
    desk = roster.add(rt, "polres_oki", "Piket PPA Polres OKI", DESK)
    write = chat(RESIDENT)
    screens = [write("MENU")[0]] + [write(key)[0] for key in REPORT_KEYS]
    assert screens[0].startswith("Aduan perdagangan orang")
    assert screens[-1].startswith("Laporan diterima. Kode: ")
    ref = screens[-1].split("Kode: ")[1][:6]
    with rt.db.session() as session:
        report = session.scalar(select(Report))
        assert (report.ref, report.channel, report.urgent, report.contact_ok) == (ref, "wa", True, True)
    assert [k for k in rt.redis.keys("menu:*")] == []
    assert not [k for k in rt.redis.keys("*") if RESIDENT.encode() in k or RESIDENT[1:].encode() in k]
    assert any(m["message"].startswith(f"TPPO {ref}") for m in fake_at.messages if m["to"] == desk.phone)


def test_words_while_the_menu_is_open_reach_the_desk(chat, rt, fake_at):
    """A resident who says Halo and then tells her story is heard: the cry for help is filed
    and alerted at once, as by SMS, and the menu is closed, not answered "Coba lagi"."""
    desk = roster.add(rt, "polres_lahat", "Piket PPA Polres Lahat", DESK)
    write = chat(RESIDENT)
    assert write("Halo")[0].startswith("Aduan perdagangan orang")
    [reply] = write("tolong adik saya disekap majikan di lahat")
    assert reply.startswith("Sudah kami terima, petugas di Lahat segera dihubungi. Kode: ")
    ref = reply.split("Kode: ")[1][:6]
    with rt.db.session() as session:
        report = session.scalar(select(Report))
        assert (report.ref, report.channel, report.urgent, report.region_code) == (ref, "wa", True, "16.04")
    [alert] = [m["message"] for m in fake_at.messages if m["to"] == desk.phone]
    assert alert.startswith(f"TPPO {ref}") and "DARURAT" in alert
    assert "Via WhatsApp, no. rahasia." in alert and "SMS" not in alert  # the channel it came by
    assert rt.redis.keys("menu:*") == []
    assert not write("1")[0].startswith("Aduan")  # closed: a key now is plain text to the desk


@pytest.mark.parametrize("keyword, answer", [
    ("INFO Muba", "Muba:\nSAPA"), ("TANDA", "Tanda bahaya:"), ("STATUS K7Q2MX", "Kode tidak dikenal.")])
def test_a_keyword_while_the_menu_is_open_is_the_keyword(chat, rt, keyword, answer):
    write = chat(RESIDENT)
    write("MENU")
    write("2")  # the help-line list is open
    assert write(keyword)[0].startswith(answer)
    assert rt.redis.keys("menu:*") == []


def test_menu_keys_stay_with_the_menu(chat):
    write = chat(RESIDENT)
    write("MENU")
    assert write("12")[0].startswith("Coba lagi.\nAduan")  # a number the screen lacks: try again
    assert write(" 4 ")[0].startswith("Pilih bahasa")
    assert write("0")[0].startswith("Aduan")
    assert write("00") == ["Terima kasih."]


def test_a_greeting_opens_the_menu_only_as_a_first_message(chat):
    write = chat(NEIGHBOUR)
    assert not write("TANDA")[0].startswith("Aduan")
    assert not write("Halo")[0].startswith("Aduan")
    assert write("menu")[0].startswith("Aduan")


def test_stop_on_whatsapp_silences_sms_and_the_reverse(chat, sms, fake_at):
    assert chat(RESIDENT)("STOP")[0].startswith("Anda tidak akan menerima pesan lagi")  # not "SMS": it is a chat
    assert sms(RESIDENT)("INFO OKI") == []  # one person, one choice: the SMS reply is suppressed
    assert sms(NEIGHBOUR)("STOP")[0].startswith("Anda tidak akan menerima")
    assert chat(NEIGHBOUR)("TANDA") == []


# -- the 24-hour rule, templates and the SMS fallback -------------------------------------------

def _report_by_sms(sms_text, rt):
    sms_text(RESIDENT)("LAPOR ada calo menahan paspor TKI di Kayuagung")
    with rt.db.session() as session:
        return session.scalar(select(Report))


def _alerts(rt):
    with rt.db.session() as session:
        return session.execute(select(Message.responder_id, Message.channel, Message.provider, Message.state,
                                      Message.provider_message_id).where(Message.purpose == "alert")
                               .order_by(Message.id)).all()


def test_an_alert_outside_the_window_goes_as_its_template(sms, rt, fake_wa):
    desk = roster.add(rt, "polres_oki", "Piket PPA Polres OKI", DESK, alert_channel="wa")
    report = _report_by_sms(sms, rt)
    [sent] = [m for m in fake_wa.messages if m["to"] == DESK[1:]]
    assert (sent["type"], sent["name"], sent["language"]) == ("template", "tppo_alert_v1", "id")
    assert sent["params"][0].startswith(f"TPPO {report.ref}") and "\n" not in sent["params"][0]
    assert _alerts(rt)[0][:4] == (desk.id, "wa", "whatsapp", "sent")


def test_an_alert_inside_the_window_goes_as_text(chat, sms, rt, fake_wa):
    roster.add(rt, "polres_oki", "Piket PPA Polres OKI", DESK, alert_channel="wa")
    chat(DESK)("TANDA")  # the duty phone wrote on WhatsApp: the window is open
    report = _report_by_sms(sms, rt)
    sent = [m for m in fake_wa.messages if m["to"] == DESK[1:] and m["type"] == "text"]
    assert sent[-1]["text"].startswith(f"TPPO {report.ref}")


@pytest.mark.parametrize("trouble", ["no template", "whatsapp down", "template refused"])
def test_an_alert_falls_back_to_sms(sms, rt, fake_wa, fake_at, monkeypatch, trouble):
    roster.add(rt, "polres_oki", "Piket PPA Polres OKI", DESK, alert_channel="wa")
    if trouble == "no template":
        monkeypatch.setattr(type(rt), "templates", {})
    elif trouble == "whatsapp down":
        fake_wa.fail_next(5, 503)
    else:
        fake_wa.approved.clear()
    report = _report_by_sms(sms, rt)
    assert [m for m in fake_at.messages if m["to"] == DESK][0]["message"].startswith(f"TPPO {report.ref}")
    assert _alerts(rt)[0][1:4] == (None, "africastalking", "sent")


def test_a_failed_whatsapp_alert_goes_to_the_next_duty_number(sms, rt, fake_wa, fake_at, client, monkeypatch):
    roster.add(rt, "polres_oki", "Piket PPA Polres OKI", DESK, alert_channel="wa")
    second = roster.add(rt, "polres_oki", "Piket PPA Polres OKI 2", SECOND_DESK)
    _report_by_sms(sms, rt)
    wamid = _alerts(rt)[0][4]
    status = {"id": wamid, "status": "failed", "timestamp": "1750263776", "recipient_id": DESK[1:],
              "errors": [{"code": 131026, "title": "Message undeliverable"}]}
    assert signed_post(client, envelope(statuses=[status])).get_data(as_text=True) == "failed: next duty number"
    drain(rt, monkeypatch)
    assert [a[0] for a in _alerts(rt)] == [_alerts(rt)[0][0], second.id]
    assert [m for m in fake_at.messages if m["to"] == SECOND_DESK]


def test_read_counts_as_delivered(sms, rt, client):
    roster.add(rt, "polres_oki", "Piket PPA Polres OKI", DESK, alert_channel="wa")
    _report_by_sms(sms, rt)
    wamid = _alerts(rt)[0][4]
    for word in ("delivered", "read"):
        signed_post(client, envelope(statuses=[{"id": wamid, "status": word, "timestamp": "1", "recipient_id": "1"}]))
    with rt.db.session() as session:
        assert session.execute(select(Message.state, Message.delivery_status).where(
            Message.provider_message_id == wamid)).one() == ("delivered", "read")


def test_feedback_outside_the_window_goes_as_its_template(chat, sms, rt, fake_wa):
    desk = roster.add(rt, "polres_oki", "Piket PPA Polres OKI", DESK)
    write = chat(RESIDENT)
    write("MENU")
    ref = [write(key)[0] for key in REPORT_KEYS][-1].split("Kode: ")[1][:6]
    with rt.db.session() as session:  # the reporter wrote more than a day ago
        session.execute(update(InboundMessage).values(received_at=datetime.now(timezone.utc) - timedelta(hours=25)))
    sms(desk.phone)(f"TERIMA {ref}")
    [feedback] = [m for m in fake_wa.messages if m["to"] == RESIDENT[1:] and m["type"] == "template"]
    assert (feedback["name"], feedback["params"]) == ("kabar_kode_v1", [ref])


def test_a_reply_outside_the_window_without_a_template_is_not_sent(rt, fake_wa):
    message = Message(id=1, purpose="reply", channel="wa")
    result, provider, channel = chat_sending.send(rt, message, RESIDENT, "Halo")
    assert (result.outcome, result.reason, channel) == (REJECTED, "outside the 24-hour window, no template", "wa")
    assert fake_wa.messages == []


def test_the_token_never_reaches_a_log(fake_wa, caplog):
    secret = "EAAG-wrong-token-that-must-not-leak"
    with caplog.at_level(logging.DEBUG):
        result = adapter.WhatsAppProvider(secret, fake_wa.phone_number_id, fake_wa.base_url).send(RESIDENT, "x")
    assert (result.outcome, result.status_code) == (RETRY, 190)
    assert "WHATSAPP_TOKEN" in caplog.text and secret not in caplog.text


# -- configuration ------------------------------------------------------------------------------

def test_an_enabled_channel_without_its_secrets_refuses_to_start():
    problems = Settings.from_env({"WHATSAPP_PHONE_NUMBER_ID": "106540352242922"}).problems()
    assert any("WHATSAPP_TOKEN, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN" in p for p in problems)
    assert not [p for p in Settings.from_env({}).problems() if "WHATSAPP" in p]


def test_production_refuses_a_weak_verify_token():
    settings = Settings.from_env({"GATEWAY_ENV": "production", "WHATSAPP_PHONE_NUMBER_ID": "1", "WHATSAPP_TOKEN": "t",
                                  "WHATSAPP_APP_SECRET": SECRET, "WHATSAPP_VERIFY_TOKEN": "hello"})
    assert any(p.startswith("WHATSAPP_VERIFY_TOKEN has 5 characters") for p in settings.problems())


@pytest.mark.parametrize("text, problem", [
    ("templates: {alert: {name: Alert-1, language: id, params: [body]}}", "templates: alert: name"),
    ("templates: {alert: {name: a, language: indonesian, params: [body]}}", "templates: alert: language"),
    ("templates: {alert: {name: a, language: id, params: [phone]}}", "templates: alert: params"),
    ("templates: {reply: {name: a, language: id}}", "templates: reply: unknown purpose"),
])
def test_templates_are_validated(tmp_path, text, problem):
    (tmp_path / "whatsapp.yaml").write_text(text)
    templates, problems = chat_sending.load_templates(tmp_path)
    assert any(problem in p for p in problems) and not templates


def test_the_shipped_templates_are_valid():
    templates, problems = chat_sending.load_templates(Path(__file__).resolve().parent.parent / "config")
    assert problems == [] and set(templates) == {"alert", "feedback"}


# -- the simulator ------------------------------------------------------------------------------

@pytest.fixture
def sim_app(settings_overrides):
    """A development stack: WhatsApp callbacks signed, WhatsApp answers in the local sink."""
    from gateway import create_app

    app = create_app({**settings_overrides, "whatsapp_app_secret": SECRET})
    yield app
    app.extensions["gateway"].runtime.db.dispose()


def _simulated_phone(sim_app, settings_overrides, monkeypatch):
    """The simulator's WhatsApp phone posting to the app in this process, jobs run inline."""
    from gateway.cli import simulator

    runtime, client = sim_app.extensions["gateway"].runtime, sim_app.test_client()

    def post_json(path, raw, headers):
        response = client.post(path, data=raw, headers=headers, content_type="application/json")
        drain(runtime, monkeypatch)
        return response.status_code, response.get_data(as_text=True)

    settings_overrides["var_dir"].mkdir(parents=True, exist_ok=True)
    sink = simulator.Sink(settings_overrides["var_dir"] / "sms-sink.log", simulator.PHONE)
    return runtime, post_json, sink, simulator.WhatsAppPhone(None, post_json, SECRET, sink, wait=2)


def test_the_simulator_writes_on_whatsapp_and_reads_the_menu(sim_app, settings_overrides, monkeypatch, tmp_path):
    from gateway.cli import simulator

    _, post_json, sink, phone = _simulated_phone(sim_app, settings_overrides, monkeypatch)
    path = tmp_path / "script.yaml"
    path.write_text('steps:\n  - dial: true\n    expect: "1 Lapor rahasia"\n'
                    '  - press: "00"\n    expect: "Terima kasih."\n'
                    '  - sms: "TANDA"\n  - expect_sms: "Tanda bahaya"\n')
    assert simulator.Script(path, phone, sink, simulator.Responders(list), echo=lambda line: None,
                            sms_wait=2).run() == []
    with pytest.raises(simulator.SimulatorError, match="is WHATSAPP_APP_SECRET the stack's"):
        simulator.WhatsAppPhone(None, post_json, "not-the-secret", sink).message("Halo")


def test_the_simulator_on_whatsapp_has_its_own_help_and_shows_alerts(sim_app, settings_overrides, monkeypatch):
    from gateway.cli import simulator

    runtime, _, sink, phone = _simulated_phone(sim_app, settings_overrides, monkeypatch)
    desk = roster.add(runtime, "polres_lahat", "Piket PPA Polres Lahat", DESK)
    lines, out = iter(["Halo", "tolong adik saya disekap majikan di lahat", "quit"]), []
    simulator.interactive(phone, sink, simulator.Responders(list), read=lambda: next(lines), echo=out.append)
    text = "\n".join(out)
    assert out[0].startswith(f"Phone {simulator.PHONE} on WhatsApp.") and simulator.WHATSAPP_HELP in out[0]
    assert not any(word in out[0] for word in ("service code", "timeout", "sms TEXT", "*123#"))
    assert "Aduan perdagangan orang" in text and "Sudah kami terima, petugas di Lahat" in text
    assert "/182 CON" not in text
    assert re.search(rf"^\[alert to {re.escape(mask_numbers(desk.phone))}\] TPPO \w{{6}}", text, re.M)
    logged = [json.loads(line) for line in sink.path.read_text().splitlines()]
    assert {(m["to"] == mask_numbers(simulator.PHONE), m["channel"]) for m in logged} == {(True, "whatsapp"),
                                                                                      (False, "sms")}


def test_the_simulator_says_it_needs_the_app_secret(settings_overrides):
    with app_with(settings_overrides) as without_whatsapp:
        result = without_whatsapp.test_cli_runner().invoke(
            args=["simulate", "--channel", "whatsapp", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "set WHATSAPP_APP_SECRET" in result.output
