"""Acknowledgement deadlines and escalation, with the jobs run inline (the deadline check is
called when the test says the time has come) and a race between TERIMA and the check run on
real concurrent transactions, on SQLite and PostgreSQL."""
from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from inline_jobs import drain
from sqlalchemy import select, update

from gateway import create_app
from gateway.cases import dispatch, roster
from gateway.messaging import outbox, sending
from gateway.store.models import Assignment, AuditEvent, Message, Outbox, Report, Responder
from workers import jobs

REPORTER = "+6281298765432"
OKI, POLDA = "+6281277776666", "+6281277770000"
# job fraud, woman, OKI (item 10, on the second page), someone in danger, may contact me, send
URGENT_REPORT = ["1", "1", "1", "98", "10", "1", "1", "1"]
_ids = itertools.count(1)


@pytest.fixture
def esc_app(settings_overrides, database_url, fake_at):
    app = create_app({**settings_overrides, "database_url": database_url, "at_username": "sandbox",
                      "at_api_key": fake_at.api_key, "at_api_url": fake_at.base_url})
    yield app
    app.extensions["gateway"].runtime.db.dispose()


@pytest.fixture
def rt(esc_app):
    runtime = esc_app.extensions["gateway"].runtime
    roster.add(runtime, "polres_oki", "Piket PPA OKI", OKI)
    roster.add(runtime, "polda_ppa_ppo", "Piket Polda", POLDA)
    return runtime


def dial_report(esc_app, keys=URGENT_REPORT) -> str:
    from phone import Phone, flask_transport

    screens = Phone(flask_transport(esc_app.test_client()), number=REPORTER).run(keys)
    return screens[-1].split("Kode: ")[1][:6]


def text(esc_app, sender: str, body: str) -> None:
    esc_app.test_client().post("/at/sms", data={"from": sender, "id": f"ATSMS_ESC_{next(_ids)}", "text": body})


def settle(rt, monkeypatch):
    """Run everything due now; deadline checks only when a test says their time has come."""
    return drain(rt, monkeypatch, skip=("finish_report", "check_ack"))


def assignments(rt) -> dict[str, str]:
    with rt.db.session() as session:
        return dict(session.execute(select(Assignment.agency_id, Assignment.state).order_by(Assignment.id)).all())


def actions(rt) -> list[str]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def check_id(rt, agency_id: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(Assignment.id).where(Assignment.agency_id == agency_id))


def to(fake_at, number):
    return [m["message"] for m in fake_at.messages if m["to"] == number]


def test_alert_carries_a_deadline_from_the_directory(esc_app, rt, monkeypatch):
    before = datetime.now(timezone.utc)
    dial_report(esc_app)
    settle(rt, monkeypatch)
    assert assignments(rt) == {"polres_oki": "waiting"}
    with rt.db.session() as session:
        deadline = session.scalar(select(Assignment.deadline_at))
        scheduled = session.scalar(select(Outbox.not_before).where(Outbox.job == "check_ack"))
    deadline = deadline if deadline.tzinfo else deadline.replace(tzinfo=timezone.utc)
    assert timedelta(minutes=14) < deadline - before < timedelta(minutes=16)  # urgent: 15 minutes
    assert scheduled is not None


def _route_with_desk_of(rt, monkeypatch, esc_app, size: int) -> list[int]:
    """A report for OKI, whose Polres desk has `size` duty numbers, routed by `route_report`."""
    for n in range(size - 1):  # the fixture registered one already
        roster.add(rt, "polres_oki", f"Piket {n}", f"+62812777766{10 + n}")
    monkeypatch.setattr(jobs, "runtime", lambda: rt)
    dial_report(esc_app)
    with rt.db.session() as session:
        report_id = session.scalar(select(Report.id))
    assert jobs.route_report(report_id) == f"{size} alerts queued"
    with rt.db.session() as session:
        return list(session.scalars(select(Message.id).where(Message.purpose == "alert").order_by(Message.id)))


def _queued_sends(rt) -> list[str]:
    return [job_id for job_id in rt.queue.job_ids if job_id.startswith("send_sms-")]


def test_routing_sends_its_first_alerts_itself_and_queues_the_rest(esc_app, rt, fake_at, monkeypatch):
    alerts = _route_with_desk_of(rt, monkeypatch, esc_app, sending.INLINE_SENDS + 1)
    assert len(fake_at.messages) == sending.INLINE_SENDS  # sent by the routing job, no job of their own
    assert _queued_sends(rt) == [f"send_sms-{alerts[-1]}"]
    assert rt.queue.scheduled_job_registry.get_job_ids() == []  # its deadline, 15 minutes on, is a row for now
    settle(rt, monkeypatch)  # the queued one, as a worker would run it
    assert len(fake_at.messages) == len({m["to"] for m in fake_at.messages}) == sending.INLINE_SENDS + 1


def test_a_failed_send_in_the_routing_job_leaves_it_and_the_rest_to_rq_after_a_back_off(
        esc_app, rt, fake_at, monkeypatch):
    fake_at.fail_next(1)
    alerts = _route_with_desk_of(rt, monkeypatch, esc_app, 2)
    assert fake_at.messages == [] and _queued_sends(rt) == []  # not tried again at once
    scheduled = rt.queue.scheduled_job_registry.get_job_ids()
    assert {f"send_sms-{m}" for m in alerts} <= set(scheduled)
    with rt.db.session() as session:  # the second, claimed with the first but never tried, is as it was
        assert session.execute(select(Message.state, Message.attempts).where(Message.id.in_(alerts))
                               .order_by(Message.id)).all() == [("retry", 1), ("queued", 0)]
    settle(rt, monkeypatch)  # their time has come
    assert sorted(m["to"] for m in fake_at.messages) == sorted([OKI, "+6281277776610"])


class Killed(BaseException):
    """The worker process dying: nothing in the job catches it."""


def test_alerts_claimed_by_a_routing_job_killed_before_sending_them_are_sent_once_later(
        esc_app, rt, fake_at, monkeypatch):
    """The routing job claims its first alerts in its own transaction; if it dies right after
    the commit, the reconciler finds them stalled in `sending` and each goes out exactly once."""
    def killed(rt, claimed):
        raise Killed()

    monkeypatch.setattr(sending, "_send_claimed", killed)
    with pytest.raises(Killed):
        _route_with_desk_of(rt, monkeypatch, esc_app, 2)
    monkeypatch.undo()
    with rt.db.session() as session:
        assert set(session.scalars(select(Message.state).where(Message.purpose == "alert"))) == {"sending"}
    assert _queued_sends(rt) == [] and fake_at.messages == []

    stale = datetime.now(timezone.utc) - timedelta(seconds=outbox.SENDING_STALE_SECONDS + 1)
    with rt.db.session() as session:
        session.execute(update(Message).values(updated_at=stale))
    assert outbox.reconcile(rt) == 2
    settle(rt, monkeypatch)
    assert sorted(m["to"] for m in fake_at.messages) == sorted([OKI, "+6281277776610"])
    assert actions(rt).count("send_released") == 2


def test_no_acknowledgement_escalates_once_then_stops_at_the_top(esc_app, rt, fake_at, monkeypatch):
    ref = dial_report(esc_app)
    settle(rt, monkeypatch)
    assert len(to(fake_at, OKI)) == 1 and to(fake_at, POLDA) == []

    oki = check_id(rt, "polres_oki")
    assert jobs.check_ack(oki) == "escalated to polda_ppa_ppo"
    assert jobs.check_ack(oki) == "already checked"  # the same check again changes nothing
    settle(rt, monkeypatch)
    assert assignments(rt) == {"polres_oki": "escalated", "polda_ppa_ppo": "waiting"}
    assert len(to(fake_at, POLDA)) == 1
    assert to(fake_at, POLDA)[0].startswith(f"ESKALASI: belum dijawab Polres OKI dlm 15 mnt. TPPO {ref}")

    assert jobs.check_ack(check_id(rt, "polda_ppa_ppo")) == "unanswered at the top"
    assert assignments(rt)["polda_ppa_ppo"] == "unanswered"
    assert actions(rt).count("escalated") == 1 and actions(rt).count("unanswered") == 1


def answered_in_time(esc_app, rt, fake_at, monkeypatch, keyword: str) -> tuple[str, str]:
    """A report OKI's duty phone answers with `keyword` before its deadline: the reference and
    what the deadline check then says. Polda hears nothing."""
    ref = dial_report(esc_app)
    settle(rt, monkeypatch)
    text(esc_app, OKI, f"{keyword} {ref}")
    settle(rt, monkeypatch)
    verdict = jobs.check_ack(check_id(rt, "polres_oki"))
    settle(rt, monkeypatch)
    assert to(fake_at, POLDA) == []
    return ref, verdict


def test_acknowledgement_in_time_stops_the_escalation(esc_app, rt, fake_at, monkeypatch):
    ref, verdict = answered_in_time(esc_app, rt, fake_at, monkeypatch, "TERIMA")
    assert verdict == "no escalation: acknowledged" and "escalated" not in actions(rt)
    # the reporter agreed to be contacted: one neutral SMS, nothing that says "trafficking"
    assert to(fake_at, REPORTER) == [
        f"Kode {ref}: sudah diterima petugas. Terima kasih. Hapus pesan ini bila HP dipakai orang lain."]


def test_a_case_closed_by_sms_does_not_escalate(esc_app, rt, fake_at, monkeypatch):
    ref, verdict = answered_in_time(esc_app, rt, fake_at, monkeypatch, "SELESAI")
    assert verdict == "no escalation: closed" and actions(rt).count("closed") == 1
    text(esc_app, OKI, f"SELESAI {ref}")  # again: nothing more happens
    settle(rt, monkeypatch)
    assert actions(rt).count("closed") == 1


def _with_second_agency(esc_app, rt, monkeypatch) -> str:
    """A report for Polres OKI that Polda's unit was given as well (a re-routing, as a coordinator does)."""
    ref = dial_report(esc_app)
    settle(rt, monkeypatch)
    with rt.db.session() as session:
        batch = outbox.Batch(rt, session)
        dispatch.assign(rt, batch, session.scalar(select(Report).where(Report.ref == ref)), "polda_ppa_ppo",
                        "re-routed")
    batch.enqueue()
    settle(rt, monkeypatch)
    return ref


def test_selesai_closes_only_the_senders_agencys_share(esc_app, rt, fake_at, monkeypatch):
    """SELESAI trusts the sender's number alone, so it must not end another agency's work: the
    case closes when the last agency given it has closed its part."""
    ref = _with_second_agency(esc_app, rt, monkeypatch)
    text(esc_app, OKI, f"SELESAI {ref}")
    settle(rt, monkeypatch)
    assert to(fake_at, OKI)[-1] == f"{ref} ditutup. Terima kasih."
    assert assignments(rt) == {"polres_oki": "closed", "polda_ppa_ppo": "waiting"}
    with rt.db.session() as session:
        assert session.scalar(select(Report.closed_at)) is None
    assert "closed_for_agency" in actions(rt) and "closed" not in actions(rt)
    assert jobs.check_ack(check_id(rt, "polda_ppa_ppo")) == "unanswered at the top"  # still Polda's to answer
    text(esc_app, POLDA, f"SELESAI {ref}")
    settle(rt, monkeypatch)
    assert assignments(rt) == {"polres_oki": "closed", "polda_ppa_ppo": "closed"}
    with rt.db.session() as session:
        assert session.scalar(select(Report.status)) == "closed"
    assert actions(rt).count("closed") == 1


def test_a_coordinator_closes_the_whole_case(esc_app, rt, fake_at, monkeypatch):
    from gateway.console import accounts
    from gateway.console import actions as console_actions

    ref = _with_second_agency(esc_app, rt, monkeypatch)
    coordinator = accounts.Account(1, "siti", "Siti", "coordinator", None)
    with rt.db.session() as session:
        report = session.scalar(select(Report).where(Report.ref == ref))
        assert console_actions.close(rt, outbox.Batch(rt, session), coordinator, report) == "Case closed."
    assert set(assignments(rt).values()) == {"closed"}


def test_no_feedback_without_consent(esc_app, rt, fake_at, monkeypatch):
    ref = dial_report(esc_app, ["1", "1", "1", "98", "10", "1", "2", "1"])  # may contact me: no
    settle(rt, monkeypatch)
    text(esc_app, OKI, f"TERIMA {ref}")
    settle(rt, monkeypatch)
    with rt.db.session() as session:
        assert session.scalar(select(Report.status)) == "acknowledged"
    assert to(fake_at, REPORTER) == []


def test_late_acknowledgement_below_settles_the_level_above(esc_app, rt, fake_at, monkeypatch):
    ref = dial_report(esc_app)
    settle(rt, monkeypatch)
    jobs.check_ack(check_id(rt, "polres_oki"))
    settle(rt, monkeypatch)
    text(esc_app, OKI, f"TERIMA {ref}")  # the local unit answers after all
    settle(rt, monkeypatch)
    assert assignments(rt) == {"polres_oki": "escalated", "polda_ppa_ppo": "acknowledged"}
    assert jobs.check_ack(check_id(rt, "polda_ppa_ppo")) == "no escalation: acknowledged"


def test_agency_without_duty_number_is_skipped_up_the_chain(esc_app, rt, fake_at, monkeypatch):
    with rt.db.session() as session:
        oki_id = session.scalar(select(Responder.id).where(Responder.agency_id == "polres_oki"))
    roster.remove(rt, oki_id)
    dial_report(esc_app)
    settle(rt, monkeypatch)
    assert assignments(rt) == {"polda_ppa_ppo": "waiting"} and len(to(fake_at, POLDA)) == 1
    assert "no_responder" in actions(rt)


@pytest.mark.parametrize("first", ["acknowledgement", "check"])
def test_acknowledgement_racing_the_check_has_one_outcome(esc_app, rt, monkeypatch, first):
    """Two real transactions at once: the one that takes the assignment's row first wins, the
    other sees the new state and does nothing twice."""
    ref = dial_report(esc_app)
    settle(rt, monkeypatch)
    assignment_id = check_id(rt, "polres_oki")
    holding, release, results = threading.Event(), threading.Event(), {}

    def acknowledge():
        with rt.db.session() as session:
            report = session.scalar(select(Report).where(Report.ref == ref))
            responder = session.scalar(select(Responder).where(Responder.phone_index == rt.vault.blind_index(OKI)))
            results["first_ack"] = dispatch.acknowledge(session, report, responder.agency_id,
                                                         f"responder:{responder.id}", responder.id)
            holding.set()
            release.wait(5)

    def check():
        with rt.db.session() as session:
            batch = outbox.Batch(rt, session)
            results["check"] = dispatch.check(rt, batch, assignment_id)
            holding.set()
            release.wait(5)

    runs = {"acknowledgement": acknowledge, "check": check}
    winner = threading.Thread(target=runs[first])
    loser = threading.Thread(target=runs["check" if first == "acknowledgement" else "acknowledgement"])
    winner.start()
    assert holding.wait(5)
    loser.start()
    time.sleep(0.3)  # the loser is now blocked on the winner's uncommitted write
    release.set()
    winner.join(10)
    loser.join(10)
    settle(rt, monkeypatch)
    escalations = actions(rt).count("escalated")
    if first == "acknowledgement":
        assert results["check"] == "no escalation: acknowledged" and escalations == 0
    else:
        assert results["check"] == "escalated to polda_ppa_ppo" and escalations == 1
    with rt.db.session() as session:
        assert session.scalar(select(Report.status)) == "acknowledged"
        polda_alerts = session.scalars(select(Message.id).join(Responder, Message.responder_id == Responder.id)
                                       .where(Responder.agency_id == "polda_ppa_ppo")).all()
    assert len(polda_alerts) == escalations
