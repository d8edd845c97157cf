"""Confidentiality and abuse limits: key rotation, retention purge, per-number limits, the
token's failure limit and the network allowlist."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet
from inline_jobs import drain
from phone import Phone, flask_transport
from sqlalchemy import select, text, update

from gateway import create_app, keys, retention
from gateway.store.models import AuditEvent, Contact, InboundMessage, Message, Note, Outbox, Report, Staff

REPORTER = "+6281298765432"
REPORT = ["1", "1", "1", "98", "10", "2", "1", "1"]  # job fraud, woman, OKI (page 2), not urgent, contact ok, send
_ids = itertools.count(1)


def make_app(settings_overrides, **overrides):
    app = create_app({**settings_overrides, **overrides})
    return app, app.extensions["gateway"].runtime


def dial(app, number=REPORTER, keys_pressed=REPORT) -> list[str]:
    return Phone(flask_transport(app.test_client()), number=number).run(keys_pressed)


def text_sms(app, body: str, sender: str = REPORTER):
    return app.test_client().post("/at/sms", data={"from": sender, "id": f"ATSMS_SEC_{next(_ids)}", "text": body})


def test_key_rotation_reencrypts_and_reindexes_everything(settings_overrides, monkeypatch):
    old, new = settings_overrides["data_key"], Fernet.generate_key().decode()
    app, rt = make_app(settings_overrides)
    ref = dial(app)[-1].split("Kode: ")[1][:6]
    text_sms(app, "STOP")
    drain(rt, monkeypatch)

    app2, rt2 = make_app(settings_overrides, data_key=f"{new},{old}")
    assert keys.rotate(rt2) == {"reports": 1, "messages": 1, "inbound_messages": 1, "contacts": 1}
    assert keys.rotate(rt2)["reports"] == 1  # twice is harmless

    app3, rt3 = make_app(settings_overrides, data_key=new)  # the old key is gone
    with rt3.db.session() as session:
        report = session.scalar(select(Report))
        assert rt3.vault.decrypt(report.reporter_phone_enc) == REPORTER
        assert report.reporter_index == rt3.vault.blind_index(REPORTER)
        assert rt3.vault.decrypt(session.scalar(select(InboundMessage.text_enc))) == "STOP"
        contact = session.scalar(select(Contact).where(Contact.phone_index == rt3.vault.blind_index(REPORTER)))
        assert contact is not None and contact.opted_out  # the STOP survives the rotation
    response = text_sms(app3, f"STATUS {ref}")
    assert response.status_code == 200
    drain(rt3, monkeypatch)
    with rt3.db.session() as session:
        reply = session.scalar(select(Message).where(Message.purpose == "reply").order_by(Message.id.desc()))
        assert reply.state == "suppressed"  # found by the new index: STOP still holds


def test_cli_rotate_key(runner):
    result = runner.invoke(args=["rotate-key"])
    assert result.exit_code == 0 and "the old key can now be removed" in result.output


def test_purge_removes_numbers_and_text_after_retention(settings_overrides, monkeypatch):
    app, rt = make_app(settings_overrides)
    dial(app)
    dial(app, number="+6281311112222")
    text_sms(app, "LAPOR calo di Muba minta biaya")
    drain(rt, monkeypatch)
    long_ago = datetime.now(timezone.utc) - timedelta(days=400)
    with rt.db.session() as session:
        first, second = session.scalars(select(Report.id).order_by(Report.id)).all()[:2]
        session.execute(update(Report).where(Report.id == first).values(closed_at=long_ago, status="closed"))
        session.execute(update(InboundMessage).values(received_at=long_ago))
        session.execute(update(Outbox).values(done_at=long_ago))
        desk = Staff(login="desk", name="Desk", role="coordinator", password_hash="-")
        session.add(desk)
        session.flush()
        session.add_all(Note(report_id=r, staff_id=desk.id, body_enc=rt.vault.encrypt("korban di rumah paman"))
                        for r in (first, second))
    purged = retention.purge(rt)
    assert purged.reports == 1 and purged.inbound == 1 and purged.outbox > 0 and purged.notes == 1
    with rt.db.session() as session:
        old, kept = session.get(Report, first), session.get(Report, second)
        assert (old.reporter_phone_enc, old.reporter_index, old.details_enc) == (None, None, None)
        assert old.category == "job_fraud" and old.region_code == "16.02"  # statistics stay
        assert kept.reporter_phone_enc is not None
        notes = dict(session.execute(select(Note.report_id, Note.body_enc)).all())
        assert notes[first] == retention.PURGED and rt.vault.decrypt(notes[second]) == "korban di rumah paman"
        assert session.scalar(select(InboundMessage.text_enc)) == retention.PURGED
        assert session.scalar(select(AuditEvent.detail).where(AuditEvent.action == "purged")).startswith("closed")
        assert all(m.to_enc == retention.PURGED for m in session.scalars(select(Message)
                                                                          .where(Message.report_id == first)))
    assert retention.purge(rt).reports == 0  # nothing left to purge twice


def test_new_sessions_are_limited_but_a_session_under_way_completes(settings_overrides):
    app, rt = make_app(settings_overrides, limit_ussd_sessions_per_hour=2)
    client = app.test_client()
    under_way = Phone(flask_transport(client), number=REPORTER)
    under_way.dial()
    under_way.press("1")
    dial(app, keys_pressed=[])  # the second new session this hour
    refused = dial(app, keys_pressed=[])[0]
    assert refused.startswith("END Terlalu banyak panggilan") and len(refused) <= 182
    for key in REPORT[1:]:  # the session begun before the limit goes on to the end
        last = under_way.press(key)
    assert "Kode: " in last
    assert dial(app, number="+6281311112222", keys_pressed=[])[0].startswith("CON ")  # others are not affected


def test_reports_per_day_limit_refuses_at_the_start(settings_overrides):
    app, rt = make_app(settings_overrides, limit_reports_per_day=1)
    assert "Kode: " in dial(app)[-1]
    assert dial(app, keys_pressed=[])[0].startswith("END Terlalu banyak panggilan")


def test_sms_limit_tells_once_and_stop_always_gets_through(settings_overrides, monkeypatch, fake_at):
    app, rt = make_app(settings_overrides, limit_sms_per_hour=2, at_username="sandbox",
                       at_api_key=fake_at.api_key, at_api_url=fake_at.base_url)
    for body in ("TANDA", "INFO OKI", "TANDA", "TANDA"):
        text_sms(app, body)
    drain(rt, monkeypatch)
    replies = [m["message"] for m in fake_at.messages]
    assert len(replies) == 3 and replies[2].startswith("Terlalu banyak pesan")
    text_sms(app, "STOP")
    drain(rt, monkeypatch)
    assert fake_at.messages[-1]["message"].startswith("Anda tidak akan menerima SMS lagi")


@pytest.fixture
def token_app(settings_overrides):
    app, rt = make_app(settings_overrides, webhook_token="s3cret-token-value")
    return app


def test_wrong_tokens_are_limited_per_address(token_app):
    client = token_app.test_client()
    body = {"sessionId": "ATUid_1", "phoneNumber": REPORTER, "serviceCode": "*1#", "text": ""}
    answers = [client.post("/at/ussd?token=guess", data=body) for _ in range(31)]
    assert [a.status_code for a in answers[:30]] == [403] * 30 and answers[30].status_code == 429
    for refused in answers:  # a phone never shows an error page
        assert refused.mimetype == "text/plain" and refused.get_data(as_text=True).startswith("END ")
    sms = client.post("/at/sms?token=guess", data={"from": REPORTER, "text": "x"})
    assert sms.status_code == 429 and "<" not in sms.get_data(as_text=True)
    same_address = client.post("/at/ussd?token=s3cret-token-value", data=body)
    assert same_address.status_code == 200 and same_address.get_data(as_text=True).startswith("CON ")


@pytest.mark.parametrize("networks, hops, forwarded, status", [
    ("10.0.0.0/8", 0, None, 403),
    ("127.0.0.0/8, 10.0.0.0/8", 0, None, 200),
    ("10.0.0.0/8", 1, "10.1.2.3", 200),
    ("10.0.0.0/8", 1, "192.0.2.1", 403),
])
def test_network_allowlist(settings_overrides, networks, hops, forwarded, status):
    from config.settings import _networks

    app, rt = make_app(settings_overrides, allowed_networks=_networks(networks), proxy_hops=hops)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = {"sessionId": "ATUid_1", "phoneNumber": REPORTER, "serviceCode": "*1#", "text": ""}
    assert app.test_client().post("/at/ussd", data=body, headers=headers).status_code == status


def test_nothing_personal_in_the_database_in_clear(settings_overrides, monkeypatch):
    """Every text column of every table, read back: neither the number nor the report's words."""
    app, rt = make_app(settings_overrides)
    dial(app)
    text_sms(app, "LAPOR penampungan rahasia di Sekayu")
    drain(rt, monkeypatch)
    with rt.db.session() as session:
        tables = [row[0] for row in session.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
        dump = "".join(str(row) for table in tables for row in session.execute(text(f"SELECT * FROM {table}")))
    assert "Sekayu" not in dump and "penampungan" not in dump
    assert "81298765432" not in dump
