"""Confidentiality and abuse limits: key rotation, retention purge, per-number limits, the
token's failure limit and the network allowlist."""
from __future__ import annotations

import itertools
import re
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from inline_jobs import drain
from phone import Phone, flask_transport
from sqlalchemy import select, text, update

from gateway import create_app, keys, limits
from gateway.cases import community, retention, roster
from gateway.store.models import AuditEvent, Contact, InboundMessage, Message, Note, Outbox, Report, Staff

REPORTER = "+6281298765432"
DESK, VOLUNTEER = "+6281277776666", "+6281255554444"
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
    roster.add(rt, "polres_oki", "Piket PPA OKI", DESK)
    community.add_volunteer(rt, "Bu Ani", "16.02", VOLUNTEER)

    app2, rt2 = make_app(settings_overrides, data_key=f"{new},{old}")
    assert keys.rotate(rt2) == {"reports": 1, "messages": 1, "inbound_messages": 1, "contacts": 1, "responders": 1,
                                "volunteers": 1}
    assert keys.rotate(rt2)["reports"] == 1  # twice is harmless

    app3, rt3 = make_app(settings_overrides, data_key=new)  # the old key is gone
    assert [d.phone for d in roster.listing(rt3)] == [DESK]
    assert roster.add(rt3, "polres_oki", "Piket PPA OKI", DESK).id == 1  # found by the new index: not added twice
    with rt3.db.session() as session:
        assert community.active_volunteer(session, rt3.vault.blind_indexes(VOLUNTEER)) is not None
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


def ussd_hop(app, session_id: str, text: str, number=REPORTER) -> str:
    """One hop as whoever holds the webhook token can send it: any session id, any `text`."""
    response = app.test_client().post("/at/ussd", data={"sessionId": session_id, "phoneNumber": number,
                                                        "serviceCode": "*123#", "text": text})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def reports_filed(rt) -> int:
    with rt.db.session() as session:
        return len(session.scalars(select(Report.id)).all())


WHOLE_PATH = "*".join(REPORT)


def test_a_first_hop_carrying_the_whole_path_counts_as_a_new_session(settings_overrides):
    app, rt = make_app(settings_overrides, limit_ussd_sessions_per_hour=2)
    assert "Kode: " in ussd_hop(app, "ATUid_path_1", WHOLE_PATH)
    assert "Kode: " in ussd_hop(app, "ATUid_path_2", WHOLE_PATH)
    refused = ussd_hop(app, "ATUid_path_3", WHOLE_PATH)
    assert refused.startswith("END Terlalu banyak panggilan") and reports_filed(rt) == 2


def test_a_session_refused_at_its_start_stays_refused(settings_overrides):
    app, rt = make_app(settings_overrides, limit_ussd_sessions_per_hour=1)
    dial(app, keys_pressed=[])
    assert ussd_hop(app, "ATUid_again", "").startswith("END Terlalu banyak panggilan")
    for sent in ("1", WHOLE_PATH):  # the same session, sent on as if the refusal had not happened
        assert ussd_hop(app, "ATUid_again", sent).startswith("END Terlalu banyak panggilan")
    assert reports_filed(rt) == 0


def test_the_daily_reports_limit_holds_where_the_report_is_filed(settings_overrides):
    app, rt = make_app(settings_overrides, limit_reports_per_day=2)
    under_way = Phone(flask_transport(app.test_client()), number=REPORTER)
    under_way.run(REPORT[:-1])  # begun while the number still had reports left
    codes = [ussd_hop(app, f"ATUid_many_{n}", WHOLE_PATH) for n in range(2)]
    assert all("Kode: " in c for c in codes)
    last = under_way.press(REPORT[-1])  # the third report of the day: a polite end, nothing filed
    assert last.startswith("END Terlalu banyak panggilan") and "Kode" not in last and reports_filed(rt) == 2
    assert ussd_hop(app, "ATUid_many_0", WHOLE_PATH) == codes[0]  # a retried final hop keeps its code


def test_unreadable_numbers_are_limited_under_one_key(settings_overrides):
    app, rt = make_app(settings_overrides, limit_reports_per_day=1)
    assert "Kode: " in ussd_hop(app, "ATUid_garbage_1", WHOLE_PATH, number="not-a-number")
    for n, number in enumerate(("not-a-number", "still not a number", "")):
        refused = ussd_hop(app, f"ATUid_garbage_{n + 2}", WHOLE_PATH, number=number)
        assert refused.startswith("END Terlalu banyak panggilan")
    assert reports_filed(rt) == 1


def test_a_reused_session_id_never_returns_another_callers_code(settings_overrides):
    app, rt = make_app(settings_overrides)
    first = ussd_hop(app, "ATUid_reused", WHOLE_PATH)
    other = ussd_hop(app, "ATUid_reused", WHOLE_PATH, number="+6281311112222")
    ref = first.split("Kode: ")[1][:6]
    assert ref not in other
    with rt.db.session() as session:
        mine = session.scalar(select(Report).where(Report.ref == ref))
        assert rt.vault.decrypt(mine.reporter_phone_enc) == REPORTER


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
    assert fake_at.messages[-1]["message"].startswith("Anda tidak akan menerima pesan lagi")


def test_a_global_send_budget_holds_replies_but_never_alerts(settings_overrides, monkeypatch, fake_at, caplog):
    """Spoofed senders, one per SMS, get past every per-number limit; the budget a minute holds
    what is over it for a later minute, counts it, says so once, and lets alerts through."""
    now = time.time()  # one minute's budget however long the test takes; "the next minute" is made below
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: now))
    app, rt = make_app(settings_overrides, limit_sms_sent_per_minute=3, at_username="sandbox",
                       at_api_key=fake_at.api_key, at_api_url=fake_at.base_url)
    roster.add(rt, "polres_oki", "Piket PPA OKI", DESK)
    spoofed = [f"+62812987650{n:02d}" for n in range(6)]
    for sender in spoofed:
        text_sms(app, "INFO OKI", sender=sender)
    drain(rt, monkeypatch)
    assert len(fake_at.messages) == 3
    with rt.db.session() as session:
        assert sorted(session.scalars(select(Message.state).where(Message.purpose == "reply"))) == \
            ["retry"] * 3 + ["sent"] * 3
    dial(app)  # a report while the budget is used up: its alert still goes at once
    drain(rt, monkeypatch)
    assert [m["to"] for m in fake_at.messages if m["to"] == DESK] == [DESK]
    assert len(fake_at.messages) == 4
    held = app.test_client().get("/metrics").get_data(as_text=True)
    assert re.search(r"^gateway_sms_held_by_budget_total ([3-9]|\d\d+)\.0$", held, re.M)
    assert [r.message for r in caplog.records].count(
        "outgoing SMS budget reached (3 a minute): SMS to residents wait, alerts still go") == 1
    for key in rt.redis.scan_iter("limit:sms-sent:*"):  # the next minute
        rt.redis.delete(key)
    drain(rt, monkeypatch)
    assert sorted(m["to"] for m in fake_at.messages if m["to"] != DESK) == spoofed


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
    from gateway.settings import _networks

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
