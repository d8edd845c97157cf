"""A case as the console shows it: the decrypted report, its assignments, each alert's
delivery state and one timeline of audit rows and notes, told in sentences (timeline.py).
Reading it writes a `viewed` audit row in the same transaction, so no one sees a report's
content without leaving a trace."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cases import dispatch
from gateway.channels.base import CHAT_CHANNELS, SMS_CHANNELS
from gateway.console.accounts import Account
from gateway.console.labels import Labels
from gateway.console.timeline import REPORTER, RESPONDER, UNKNOWN, Sent, Sentences
from gateway.store.models import Assignment, AuditEvent, Message, Note, Report, Responder, Staff

if TYPE_CHECKING:
    from gateway.runtime import Runtime

def utc(moment: Optional[datetime]) -> Optional[datetime]:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: a sentence, and a note's own text under it."""

    at: datetime
    text: str
    note: Optional[str] = None


@dataclass(frozen=True)
class Viewer:
    """`Dilihat oleh`: one line per person, however often they opened the case."""

    name: str
    times: int
    last: datetime


@dataclass(frozen=True)
class Alert:
    responder: str
    agency_id: str
    state: str
    delivery_status: Optional[str]
    failure_reason: Optional[str]
    updated_at: datetime


@dataclass(frozen=True)
class Share:
    """One agency's line under `Instansi pada kasus ini`: its state, and the time of that state
    (a closed share shows when it was closed, not when it was acknowledged before)."""

    agency_id: str
    state: str
    deadline_at: datetime
    acknowledged_at: Optional[datetime]
    closed_at: Optional[datetime]      # for a closed share
    passed_on_at: Optional[datetime]   # for an escalated or unanswered one: when its deadline ran out


@dataclass(frozen=True)
class CaseFile:
    report: Report
    details: Optional[str]
    reporter_phone: Optional[str]  # only when the reporter agreed to be contacted
    assignments: list[Share]
    alerts: list[Alert]
    timeline: list[Entry]
    views: list[Viewer]
    contact_asked: bool = True  # False: a report typed by SMS or chat, never asked about contact


def _open(vault, token: Optional[str]) -> Optional[str]:
    if token is None:
        return None
    return vault.decrypt(token) if token else _("(removed after the retention period)")


def _actor_names(session: Session, actors: set[str], labels: Labels) -> dict[str, str]:
    """`staff:3` -> `Siti (Polres OKI)`, `responder:5` -> `Piket PPA (SMS)`; anything else as it is."""
    names = {}
    ids = lambda prefix: [int(a.split(":", 1)[1]) for a in actors  # noqa: E731
                          if a.startswith(prefix) and a.split(":", 1)[1].isdigit()]
    for staff in session.scalars(select(Staff).where(Staff.id.in_(ids("staff:")))):
        where = labels.agency(staff.agency_id) if staff.agency_id else ROLE_NAMES.get(staff.role, staff.role)()
        names[f"staff:{staff.id}"] = f"{staff.name} ({where})"
    for responder in session.scalars(select(Responder).where(Responder.id.in_(ids("responder:")))):
        names[f"responder:{responder.id}"] = _("%(name)s (by SMS)", name=responder.name)
    return names


ROLE_NAMES = {"coordinator": lambda: _("coordinator"), "operator": lambda: _("operator"),
              "agency_staff": lambda: _("agency staff")}


def open_case(runtime: Runtime, session: Session, account: Account, report: Report) -> CaseFile:
    dispatch.audit(session, report.id, "viewed", "case page", actor=account.actor)
    session.flush()
    vault, labels = runtime.vault, Labels(runtime.content)
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.report_id == report.id,
                                                           AuditEvent.action.not_in(("viewed", "noted")))
                                  .order_by(AuditEvent.at, AuditEvent.id)))
    seen = session.execute(select(AuditEvent.actor, func.count(), func.max(AuditEvent.at))
                           .where(AuditEvent.report_id == report.id, AuditEvent.action == "viewed")
                           .group_by(AuditEvent.actor)).all()
    notes = list(session.scalars(select(Note).where(Note.report_id == report.id).order_by(Note.at, Note.id)))
    names = _actor_names(session, {e.actor for e in events} | {a for a, _n, _at in seen}
                         | {f"staff:{n.staff_id}" for n in notes}, labels)
    name = lambda actor: names.get(actor, _("the system"))  # noqa: E731
    sent = list(session.execute(select(Message, Responder).outerjoin(Responder, Responder.id == Message.responder_id)
                                .where(Message.report_id == report.id).order_by(Message.id)))
    messages = _recipients(session, report, sent)
    responders = dict(session.execute(select(Responder.id, Responder.name)).all())
    deadline = getattr(runtime.content.directory.ack_deadline_minutes, "urgent" if report.urgent else "normal")
    say = Sentences(labels, name, messages, responders, int(deadline)).say
    timeline = [Entry(utc(e.at), say(e.action, e.detail or "", e.actor)) for e in events]
    timeline += [Entry(utc(n.at), _("%(who)s added a note:", who=name(f"staff:{n.staff_id}")),
                       _open(vault, n.body_enc)) for n in notes]
    timeline.sort(key=lambda e: e.at)
    views = sorted((Viewer(name(actor), times, utc(last)) for actor, times, last in seen),
                   key=lambda v: v.last, reverse=True)
    alerts = [Alert(r.name, r.agency_id, m.state, m.delivery_status, m.failure_reason, utc(m.updated_at))
              for m, r in sent if m.purpose == "alert" and r is not None]
    assignments = _shares(report, list(session.scalars(select(Assignment).where(Assignment.report_id == report.id)
                                                      .order_by(Assignment.id))), events)
    phone = _open(vault, report.reporter_phone_enc) if report.contact_ok else None
    return CaseFile(report, _open(vault, report.details_enc), phone, assignments, alerts, timeline, views,
                    _contact_asked(report, events))


def _contact_asked(report: Report, events: list[AuditEvent]) -> bool:
    """Whether the reporter was asked if a responder may contact them. Only the menu asks (USSD,
    or WhatsApp's numbered-message menu); a report typed by SMS or WhatsApp is filed by the SMS
    desk with `contact_ok` false without asking, and its alert says `Via SMS, nomor
    dirahasiakan` (gateway/cases/dispatch.py, alert_body). On WhatsApp both happen: the desk's
    `received` row names what it read in the text, the menu's has no detail."""
    if report.channel not in SMS_CHANNELS:
        return True
    if report.channel not in CHAT_CHANNELS:
        return False
    received = next((e for e in events if e.action == "received"), None)
    return received is not None and not received.detail


def _recipients(session: Session, report: Report, sent: list) -> dict[int, Sent]:
    """Each SMS of the case with whom it went to. An alert names its duty number; any other is
    told apart by its number's blind index: the reporter's, or a duty number's (the reply to a
    responder's TERIMA or SELESAI is an SMS of the case too, but not one to the reporter)."""
    others = {m.to_index for m, r in sent if r is None}
    duty = {}
    for responder in session.scalars(select(Responder).where(Responder.phone_index.in_(others))
                                     .order_by(Responder.id)):
        duty.setdefault(responder.phone_index, responder)
    out = {}
    for message, responder in sent:
        if responder is not None:
            out[message.id] = Sent(message.purpose, responder.name, responder.agency_id, RESPONDER)
        elif report.reporter_index and message.to_index == report.reporter_index:
            out[message.id] = Sent(message.purpose, None, None, REPORTER)
        elif message.to_index in duty:
            found = duty[message.to_index]
            out[message.id] = Sent(message.purpose, found.name, found.agency_id, RESPONDER)
        else:
            out[message.id] = Sent(message.purpose, None, None, UNKNOWN)
    return out


def _shares(report: Report, assignments: list[Assignment], events: list[AuditEvent]) -> list[Share]:
    """Each assignment with the time of its state, read from the audit rows that moved it: an
    agency's SELESAI or console close (`closed_for_agency`, which closes what was passed on from
    it too), else the closing of the whole case; an escalation or `unanswered` at its deadline."""
    closed_at: dict[int, datetime] = {}
    passed_on: dict[str, datetime] = {}
    for event in events:
        if event.action == "closed_for_agency" and event.detail:
            for share in dispatch.agencys_share(assignments, event.detail):
                closed_at.setdefault(share, utc(event.at))
        elif event.action in ("escalated", "unanswered") and event.detail:
            below = event.detail.replace(" -> ", ":").split(":", 1)[0].strip()
            passed_on.setdefault(below, utc(event.at))
    return [Share(a.agency_id, a.state, utc(a.deadline_at), utc(a.acknowledged_at),
                  (closed_at.get(a.id) or utc(report.closed_at)) if a.state == "closed" else None,
                  passed_on.get(a.agency_id, utc(a.deadline_at)) if a.state in ("escalated", "unanswered") else None)
             for a in assignments]
