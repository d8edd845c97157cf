"""Community reach: volunteers' trusted reports and opt-in awareness broadcasts, inline and on a
real worker with the SDK sending to the local fake."""
from __future__ import annotations

import itertools
import time

import pytest
from conftest import wait_until
from inline_jobs import drain
from sqlalchemy import select

from gateway.cases import community, roster
from gateway.errors import ConfigError
from gateway.store.models import Report
from workers import jobs

VOLUNTEER, OKI_DESK = "+6281255554444", "+6281277776666"
OKI_A, OKI_B, PALEMBANG, STOPPED, REPORTER = ("+6281311110001", "+6281311110002", "+6281311110003",
                                              "+6281311110004", "+6281311110005")
_ids = itertools.count(1)


@pytest.fixture
def rt(at_app):
    runtime = at_app.extensions["gateway"].runtime
    roster.add(runtime, "polres_oki", "Piket PPA OKI", OKI_DESK)
    return runtime


def text(app, sender: str, body: str) -> None:
    assert app.test_client().post("/at/sms", data={"from": sender, "id": f"ATSMS_COM_{next(_ids)}",
                                                   "text": body}).status_code == 200


def to(fake_at, number):
    return [m["message"] for m in fake_at.messages if m["to"] == number]


def opt_in_residents(app):
    for number, body in ((OKI_A, "IKUT OKI"), (OKI_B, "join kayuagung"), (PALEMBANG, "IKUT Palembang"),
                         (STOPPED, "IKUT OKI")):
        text(app, number, body)
    text(app, STOPPED, "STOP")
    text(app, REPORTER, "LAPOR calo di OKI minta biaya paspor")  # reported: never opted in


def test_broadcast_reaches_exactly_the_opted_in_numbers_of_the_area(at_app, rt, fake_at, monkeypatch):
    opt_in_residents(at_app)
    drain(rt, monkeypatch)
    assert to(fake_at, OKI_A) == ["Terdaftar: info pencegahan untuk OKI. Kirim STOP untuk berhenti."]
    assert to(fake_at, OKI_B)[0].startswith("Signed up: prevention news for OKI")
    seen = len(fake_at.messages)

    body = "Waspada lowongan kerja ke luar negeri tanpa biaya dan gaji besar. Ragu? Kirim LAPOR ke nomor ini."
    broadcast = community.schedule_broadcast(rt, "OKI", body)
    drain(rt, monkeypatch)
    assert jobs.send_broadcast(broadcast.id) == "already sent"
    drain(rt, monkeypatch)
    sent = fake_at.messages[seen:]
    assert sorted(m["to"] for m in sent) == sorted([OKI_A, OKI_B]) and all(m["message"] == body for m in sent)


def test_broadcast_text_must_fit_one_plain_sms(rt):
    with pytest.raises(ConfigError, match="one GSM-7 SMS"):
        community.schedule_broadcast(rt, "OKI", "x" * 161)
    with pytest.raises(ConfigError, match="one GSM-7 SMS"):
        community.schedule_broadcast(rt, "OKI", "Waspada \u201ccalo\u201d")
    with pytest.raises(ConfigError, match="unknown kabupaten/kota"):
        community.schedule_broadcast(rt, "Jakarta", "Waspada calo")


def test_join_without_an_area_explains(at_app, rt, fake_at, monkeypatch):
    text(at_app, OKI_A, "IKUT")
    drain(rt, monkeypatch)
    assert to(fake_at, OKI_A)[0].startswith("Kirim IKUT lalu nama kabupaten/kota, mis. IKUT OKI")


def test_volunteer_watch_is_a_trusted_report_until_removed(at_app, rt, fake_at, monkeypatch):
    volunteer = community.add_volunteer(rt, "Bu Ani", "OKI", VOLUNTEER)
    text(at_app, VOLUNTEER, "PANTAU balai desa: 6 gadis dijemput calo malam ini, paspor ditahan")
    drain(rt, monkeypatch)
    with rt.db.session() as session:
        report = session.scalar(select(Report))
        assert (report.trusted, report.region_code, report.status) == (True, "16.02", "routed")
    alert = to(fake_at, OKI_DESK)[0]
    assert "Dari relawan." in alert and len(alert) <= 160

    assert community.remove_volunteer(rt, volunteer.id)
    text(at_app, VOLUNTEER, "PANTAU kayuagung calo lagi datang")
    drain(rt, monkeypatch)
    with rt.db.session() as session:
        latest = session.scalar(select(Report).order_by(Report.id.desc()))
        assert (latest.trusted, latest.region_code) == (False, "16.02")
    assert "Dari relawan." not in to(fake_at, OKI_DESK)[-1]


def test_cli_volunteers_and_broadcast(at_app, rt):
    runner = at_app.test_cli_runner()
    added = runner.invoke(args=["volunteers", "add", "--name", "Pak Budi", "--region", "Muba", "--phone",
                                "0812 5555 3333"])
    assert added.exit_code == 0 and "added for 16.06" in added.output
    listed = runner.invoke(args=["volunteers", "list"]).output
    assert "16.06\tPak Budi" in listed and "5555" not in listed
    volunteer_id = listed.split("\t")[0]
    assert runner.invoke(args=["volunteers", "remove", volunteer_id]).exit_code == 0
    assert runner.invoke(args=["volunteers", "remove", volunteer_id]).exit_code != 0
    assert runner.invoke(args=["volunteers", "add", "--name", "X", "--region", "Bandung", "--phone",
                               "+6281255553333"]).exit_code != 0
    scheduled = runner.invoke(args=["broadcast", "add", "--region", "16.02", "--text", "Waspada calo.",
                                    "--at", "2030-01-01 08:00"])
    assert scheduled.exit_code == 0 and "scheduled at 2030-01-01 08:00 UTC" in scheduled.output


@pytest.mark.slow
def test_broadcast_and_watch_end_to_end(client, runtime, fake_at, start_worker):
    roster.add(runtime, "polres_oki", "Piket PPA OKI", OKI_DESK)
    volunteer = community.add_volunteer(runtime, "Bu Ani", "OKI", VOLUNTEER)
    app = client.application
    start_worker()
    opt_in_residents(app)
    wait_until(lambda: len(fake_at.messages) >= 6, timeout=30)  # 4 confirmations, the STOP's, the report's
    time.sleep(1)
    seen = len(fake_at.messages)
    community.schedule_broadcast(runtime, "OKI", "Waspada calo PMI ilegal. Kirim LAPOR bila ragu.")
    text(app, VOLUNTEER, "PANTAU pelabuhan: calo bawa 4 orang ke Malaysia lewat jalur tikus")
    wait_until(lambda: len(fake_at.messages) >= seen + 4, timeout=30)  # 2 broadcast, 1 reply, 1 alert
    time.sleep(2)
    broadcast_to = sorted(m["to"] for m in fake_at.messages[seen:] if m["message"].startswith("Waspada"))
    assert broadcast_to == sorted([OKI_A, OKI_B])
    assert any("Dari relawan." in m for m in to(fake_at, OKI_DESK))
    with runtime.db.session() as session:
        watch = session.scalar(select(Report).where(Report.trusted.is_(True)))
        assert watch.status == "routed"

    community.remove_volunteer(runtime, volunteer.id)  # at once: the next PANTAU is an ordinary report
    alerts = len(to(fake_at, OKI_DESK))
    text(app, VOLUNTEER, "PANTAU pelabuhan Kayuagung: calo datang lagi dengan mobil hitam")
    wait_until(lambda: len(to(fake_at, OKI_DESK)) > alerts, timeout=30)
    assert "Dari relawan." not in to(fake_at, OKI_DESK)[-1]
    with runtime.db.session() as session:
        latest = session.scalar(select(Report).order_by(Report.id.desc()))
        assert (latest.trusted, latest.status, latest.region_code) == (False, "routed", "16.02")
