"""Alerting agencies about a report, and holding each one to an acknowledgement deadline.

Each routing decision becomes an Assignment: the first agency up the decision's escalation
chain that has a duty number gets one alert per responder and a deadline (config/agencies.yaml
`ack_deadline_minutes`, urgent or normal). At the deadline `check` escalates a still-waiting
assignment one level up; `TERIMA <ref>` from a duty responder acknowledges it and everything
escalated from it. Both are compare-and-sets on the assignment's state, so an acknowledgement
that races the deadline check has exactly one outcome. Every step is an audit row."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.cases import alerts
from gateway.cases.routing import Case, route
from gateway.channels.base import CHAT_CHANNELS, SMS_CHANNELS, Channel
from gateway.messaging import outbox
from gateway.messaging.sending import unit_of_work
from gateway.store.db import UNSYNCED
from gateway.store.models import Assignment, AuditEvent, Message, Report, Responder
from gateway.store.states import (
    ASSIGNMENT_MOVES,
    OPEN_ASSIGNMENTS,
    AssignmentState,
    MessageState,
    ReportStatus,
    sources,
)

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

ESCALATABLE = sources(ASSIGNMENT_MOVES, AssignmentState.ESCALATED)
ACKNOWLEDGEABLE = sources(ASSIGNMENT_MOVES, AssignmentState.ACKNOWLEDGED)
ROUTABLE = (ReportStatus.RECEIVED,)  # routed once: a report already routed is not routed again


def audit(session: Session, report_id: int, action: str, detail: str, actor: str = "router") -> None:
    session.add(AuditEvent(actor=actor, action=action, report_id=report_id, detail=detail[:500]))


def responders(session: Session, agency_id: str, allow_demo: bool) -> list[Responder]:
    query = select(Responder).where(Responder.agency_id == agency_id, Responder.active.is_(True))
    if not allow_demo:
        query = query.where(Responder.demo.is_(False))
    return list(session.scalars(query.order_by(Responder.id)))


def region_label(directory, report: Report) -> Optional[str]:
    """`OKU Timur (kec. Belitang)`: the kabupaten/kota, and the place within it an SMS named."""
    if not report.region_code:
        return None
    short = directory.region(report.region_code).short
    return f"{short} ({report.place})" if report.place else short


def via(channel: Optional[str]) -> Optional[str]:
    """The text channel a report came on, as the alert names it (alerts.VIA); None: USSD."""
    if channel == Channel.WHATSAPP:
        return "whatsapp"
    return "sms" if channel in SMS_CHANNELS else None


def alert_body(rt: Runtime, report: Report, escalation: Optional[tuple[str, int]] = None) -> str:
    content, vault = rt.content, rt.vault
    details = vault.decrypt(report.details_enc)
    return alerts.compose(
        content.engine, ref=report.ref, category=report.category, victim=report.victim,
        region_label=region_label(content.directory, report),
        urgent=report.urgent, contact_phone=vault.decrypt(report.reporter_phone_enc) if report.contact_ok else None,
        details=details, trusted=report.trusted, via=via(report.channel),
        keep=content.reader.read(details).keep if details else (), escalation=escalation)


def reroute_for_place(rt: Runtime, batch: outbox.Batch, report: Report) -> int:
    """A filed report whose place became known (the reporter answered the place question):
    alert the agencies the place adds. Those already alerted keep the case; returns how many
    agencies were added."""
    session = batch.session
    before = set(session.scalars(select(Assignment.agency_id).where(Assignment.report_id == report.id)))
    added = 0
    for decision in route(Case.of(report), rt.content.directory, datetime.now(timezone.utc)):
        if decision.agency_id in before:
            continue
        audit(session, report.id, "routed", f"{decision.agency_id}: {decision.reason} (place given)")
        assignment = assign(rt, batch, report, decision.agency_id, decision.reason)
        if assignment is not None and assignment.agency_id not in before:
            before.add(assignment.agency_id)
            added += 1
    if added and report.status == ReportStatus.UNASSIGNED:
        report.status = ReportStatus.ROUTED
    return added


def queue_sms(rt: Runtime, batch: outbox.Batch, to: str, body: str, purpose: str, not_before: Optional[datetime] = None,
              channel: Optional[str] = None, **links) -> Message:
    """An SMS to anyone (or, with `channel`, a chat app's message): a queued row with its send
    job, in the caller's transaction."""
    return _queued(batch, _message(rt, to, body, purpose, channel, **links), not_before)


def _queued(batch: outbox.Batch, message: Message, not_before: Optional[datetime] = None) -> Message:
    batch.session.add(message)
    batch.session.flush()
    batch.add("send_sms", message.id, not_before, row=message)
    return message


def _message(rt: Runtime, to: str, body: str, purpose: str, channel: Optional[str] = None, **links) -> Message:
    return Message(purpose=purpose, state=MessageState.QUEUED, channel=channel, to_enc=rt.vault.encrypt(to),
                   to_index=rt.vault.blind_index(to), body_enc=rt.vault.encrypt(body), **links)


def _alert(rt: Runtime, report_id: int, responder: Responder, body: str) -> Message:
    """By the channel the duty number chose; a chat alert falls back to SMS (messaging.chat)."""
    channel = responder.alert_channel if responder.alert_channel in CHAT_CHANNELS else None
    return _message(rt, rt.vault.decrypt(responder.phone_enc), body, "alert", channel,
                    report_id=report_id, responder_id=responder.id)


def queue_alert(rt: Runtime, batch: outbox.Batch, report_id: int, responder: Responder, body: str) -> Message:
    return _queued(batch, _alert(rt, report_id, responder, body))


def alerted(session: Session, report_id: int) -> set[int]:
    return set(session.scalars(select(Message.responder_id).where(Message.report_id == report_id,
                                                                  Message.purpose == "alert")))


def assign(rt: Runtime, batch: outbox.Batch, report: Report, agency_id: str, reason: str,
           parent_id: Optional[int] = None, escalation: Optional[tuple[str, int]] = None) -> Optional[Assignment]:
    """Alert the first agency from `agency_id` up its chain that has a duty number.
    `escalation`: (who did not answer, in how many minutes), said at the alert's start."""
    session, directory = batch.session, rt.content.directory
    # Every assignment and alert of this transaction is flushed as it is made, so the queries
    # below see them; what is pending (audit rows) is written with this assignment's one flush.
    with session.no_autoflush:
        for agency in directory.chain(agency_id):
            staff = responders(session, agency.id, rt.settings.demo_roster_allowed)
            if staff:
                break
        else:
            audit(session, report.id, "unassigned", f"no duty number in the chain of {agency_id}")
            return None
        if agency.id != agency_id:
            audit(session, report.id, "no_responder", f"{agency_id} has no duty number; alerting {agency.id}")
        existing = session.scalar(select(Assignment).where(Assignment.report_id == report.id,
                                                           Assignment.agency_id == agency.id))
        if existing is not None:  # two decisions met on the same agency
            return existing
        already = alerted(session, report.id)
    minutes = getattr(directory.ack_deadline_minutes, "urgent" if report.urgent else "normal")
    deadline = outbox.due(rt, timedelta(minutes=minutes))
    assignment = Assignment(report_id=report.id, agency_id=agency.id, parent_id=parent_id, reason=reason[:100],
                            state=AssignmentState.WAITING, deadline_at=deadline)
    body = alert_body(rt, report, escalation)
    messages = [_alert(rt, report.id, responder, body) for responder in staff if responder.id not in already]
    session.add_all([assignment, *messages])
    session.flush()
    for message in messages:
        batch.add("send_sms", message.id, row=message)
    batch.add("check_ack", assignment.id, deadline)
    return assignment


def check(rt: Runtime, batch: outbox.Batch, assignment_id: int) -> str:
    """At the deadline: escalate the assignment one level up unless it was acknowledged."""
    session = batch.session
    if not outbox.mark_done(session, "check_ack", assignment_id):
        return "already checked"
    escalated = session.execute(update(Assignment).where(Assignment.id == assignment_id,
                                                         Assignment.state.in_(ESCALATABLE))
                                .values(state=AssignmentState.ESCALATED)).rowcount
    assignment = session.get(Assignment, assignment_id)
    if not escalated:
        return f"no escalation: {assignment.state}"
    directory = rt.content.directory
    chain = directory.chain(assignment.agency_id)
    report = session.get(Report, assignment.report_id)
    minutes = getattr(directory.ack_deadline_minutes, "urgent" if report.urgent else "normal")
    above = assign(rt, batch, report, chain[1].id, f"escalated from {assignment.agency_id}",
                   parent_id=assignment.id, escalation=(chain[0].short, f"{minutes:g}")) if len(chain) > 1 else None
    if above is None or above.id == assignment.id:
        assignment.state = AssignmentState.UNANSWERED
        audit(session, report.id, "unanswered", f"{assignment.agency_id}: no acknowledgement, nobody above")
        log.error("report %s: %s did not acknowledge and there is no one above", report.id, assignment.agency_id)
        return "unanswered at the top"
    audit(session, report.id, "escalated", f"{assignment.agency_id} -> {above.agency_id}: no acknowledgement")
    return f"escalated to {above.agency_id}"


def agencys_share(assignments: list[Assignment], agency_id: str) -> list[int]:
    """The agency's assignments and everything escalated from them: its duty, wherever it went."""
    share = [a.id for a in assignments if a.agency_id == agency_id]
    for a in assignments:  # assignments are created parent first, so one pass finds every descendant
        if a.parent_id in share and a.id not in share:
            share.append(a.id)
    return share


def acknowledge(session: Session, report: Report, agency_id: str, actor: str,
                responder_id: Optional[int] = None) -> bool:
    """Record an acknowledgement for `agency_id` (TERIMA from a duty responder, or a console
    action by that agency's staff): its assignment and everything escalated from it are
    settled. True for the first acknowledgement of the report."""
    now = datetime.now(timezone.utc)
    assignments = list(session.scalars(select(Assignment).where(Assignment.report_id == report.id)))
    settled = agencys_share(assignments, agency_id)
    changed = 0
    if settled:
        session.execute(update(Assignment).where(Assignment.id.in_(settled), Assignment.state.in_(ACKNOWLEDGEABLE))
                        .values(state=AssignmentState.ACKNOWLEDGED))
        changed = session.execute(update(Assignment).where(Assignment.id.in_(settled),
                                                           Assignment.acknowledged_at.is_(None))
                                  .values(acknowledged_at=now, acknowledged_by=responder_id)).rowcount
    first = session.execute(update(Report).where(Report.id == report.id, Report.acknowledged_at.is_(None),
                                                 Report.closed_at.is_(None))
                            .values(acknowledged_at=now, acknowledged_by=responder_id, status=ReportStatus.ACKNOWLEDGED)
                            .execution_options(synchronize_session="fetch")).rowcount
    if changed or first:
        audit(session, report.id, "acknowledged", agency_id, actor=actor)
    return bool(first)


def close_for_agency(session: Session, report: Report, agency_id: str, actor: str) -> Optional[str]:
    """One agency is done with a case (SELESAI from its duty responder, or its staff in the
    console): its assignment and those escalated from it close. The case itself closes only when
    no assigned agency still has it open, or when a coordinator closes it (`close`): one agency
    must not end the work of another, and SELESAI trusts the sender's number alone.
    Returns "case" when this closed the case, "agency" when only the agency's part, None when
    the agency had nothing open on it."""
    if report.closed_at is not None:
        return None
    # The report's row first: two agencies closing at once on PostgreSQL must not each see the
    # other still open and both leave the case open (SQLite has one writer anyway).
    session.execute(select(Report.id).where(Report.id == report.id).with_for_update())
    assignments = list(session.scalars(select(Assignment).where(Assignment.report_id == report.id)))
    share = set(agencys_share(assignments, agency_id))
    closing = [a.id for a in assignments if a.id in share and a.state in OPEN_ASSIGNMENTS]
    if not closing:
        return None
    session.execute(update(Assignment).where(Assignment.id.in_(closing), Assignment.state.in_(OPEN_ASSIGNMENTS))
                    .values(state=AssignmentState.CLOSED))
    if any(a.state in OPEN_ASSIGNMENTS for a in assignments if a.id not in share):
        audit(session, report.id, "closed_for_agency", agency_id, actor=actor)
        return "agency"
    return "case" if close(session, report, agency_id, actor) else None


def close(session: Session, report: Report, detail: str, actor: str) -> bool:
    """Close a whole case: a coordinator in the console, or the last agency with a share in it
    (`close_for_agency`). Its waiting assignments are settled too, since the deadline check
    escalates only a `waiting` one: a closed case must not escalate. False when it was already
    closed."""
    closed = session.execute(update(Report).where(Report.id == report.id, Report.closed_at.is_(None))
                             .values(closed_at=datetime.now(timezone.utc), status=ReportStatus.CLOSED)
                             .execution_options(synchronize_session="fetch")).rowcount
    if closed:
        session.execute(update(Assignment).where(Assignment.report_id == report.id,
                                                 Assignment.state == AssignmentState.WAITING)
                        .values(state=AssignmentState.CLOSED))
        audit(session, report.id, "closed", detail, actor=actor)
    return bool(closed)


def route_report(rt: Runtime, report_id: int) -> str:
    """Choose the agencies for a report; each gets an assignment, alerts and a deadline."""
    with unit_of_work(rt) as batch:
        session = batch.session
        claimed = session.execute(update(Report).where(Report.id == report_id, Report.status.in_(ROUTABLE))
                                  .values(status=ReportStatus.ROUTED, routed_at=datetime.now(timezone.utc)),
                                  execution_options=UNSYNCED).rowcount
        outbox.mark_done(session, "route_report", report_id)
        if not claimed:
            return "already routed"
        alerts = _route(rt, batch, session.get(Report, report_id))
    return f"{alerts} alerts queued"


def route_now(rt: Runtime, batch: outbox.Batch, report: Report) -> int:
    """Route a report in the transaction that files it (an SMS turn), instead of owing a
    `route_report` job: filing and alerting then commit together or not at all. Returns how
    many alerts were queued."""
    report.status, report.routed_at = ReportStatus.ROUTED, datetime.now(timezone.utc)
    batch.session.flush()
    return _route(rt, batch, report)


def _route(rt: Runtime, batch: outbox.Batch, report: Report) -> int:
    before = sum(job == "send_sms" for job, _, _ in batch.jobs)
    for decision in route(Case.of(report), rt.content.directory, datetime.now(timezone.utc)):
        audit(batch.session, report.id, "routed", f"{decision.agency_id}: {decision.reason}")
        assign(rt, batch, report, decision.agency_id, decision.reason)
    alerts = sum(job == "send_sms" for job, _, _ in batch.jobs) - before
    if not alerts:
        report.status = ReportStatus.UNASSIGNED
        log.error("report %s has no responder to alert: register duty numbers", report.id)
    return alerts




def alert_next(rt: Runtime, message_id: int) -> str:
    """An alert that will not arrive: send it to the next duty number not yet alerted, in the
    same agency first, then up its escalation chain. Claimed through its outbox entry, so two
    copies of the job alert one person, not two."""
    with unit_of_work(rt) as batch:
        session = batch.session
        if not outbox.mark_done(session, "alert_next", message_id):
            return "already handled"
        failed = session.get(Message, message_id)
        agency_id = session.scalar(select(Responder.agency_id).where(Responder.id == failed.responder_id))
        already = alerted(session, failed.report_id)
        candidates = (r for agency in rt.content.directory.chain(agency_id)
                      for r in responders(session, agency.id, rt.settings.demo_roster_allowed))
        nxt = next((r for r in candidates if r.id not in already), None)
        if nxt is None:
            audit(session, failed.report_id, "no_next_responder",
                           f"{agency_id}: every duty number up the chain was tried")
            log.error("report %s: no further duty number from %s up", failed.report_id, agency_id)
            return "no further duty number"
        message = queue_alert(rt, batch, failed.report_id, nxt, rt.vault.decrypt(failed.body_enc))
        audit(session, failed.report_id, "alert_next",
                       f"{nxt.agency_id}: responder {nxt.id} after message {message_id} failed")
    return f"alert re-sent as message {message.id}"


def check_ack(rt: Runtime, assignment_id: int) -> str:
    """An assignment's deadline: escalate it one level up unless acknowledged."""
    with unit_of_work(rt) as batch:
        return check(rt, batch, assignment_id)
