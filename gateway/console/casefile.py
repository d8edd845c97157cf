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
from gateway.console.accounts import Account
from gateway.console.labels import Labels
from gateway.console.timeline import Sent, Sentences
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
class CaseFile:
    report: Report
    details: Optional[str]
    reporter_phone: Optional[str]  # only when the reporter agreed to be contacted
    assignments: list[Assignment]
    alerts: list[Alert]
    timeline: list[Entry]
    views: list[Viewer]


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
    messages = {m.id: Sent(m.purpose, r.name if r else None, r.agency_id if r else None) for m, r in sent}
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
    assignments = list(session.scalars(select(Assignment).where(Assignment.report_id == report.id)
                                       .order_by(Assignment.id)))
    phone = _open(vault, report.reporter_phone_enc) if report.contact_ok else None
    return CaseFile(report, _open(vault, report.details_enc), phone, assignments, alerts, timeline, views)
