"""A case as the console shows it: the decrypted report, its assignments, each alert's
delivery state and one timeline of audit rows and notes. Reading it writes a `viewed` audit
row in the same transaction, so no one sees a report's content without leaving a trace."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cases import dispatch
from gateway.console.accounts import Account
from gateway.store.models import Assignment, AuditEvent, Message, Note, Report, Responder, Staff

if TYPE_CHECKING:
    from gateway.runtime import Runtime

PURGED_TEXT = "(removed after the retention period)"


def utc(moment: Optional[datetime]) -> Optional[datetime]:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str
    action: str
    detail: str


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
    views: list[Entry]


def _open(vault, token: Optional[str]) -> Optional[str]:
    if token is None:
        return None
    return vault.decrypt(token) if token else PURGED_TEXT


def _actor_names(session: Session, actors: set[str]) -> dict[str, str]:
    """`staff:3` -> `Siti (staff)`, `responder:5` -> `Piket PPA (SMS)`; anything else as it is."""
    names = {}
    ids = lambda prefix: [int(a.split(":", 1)[1]) for a in actors  # noqa: E731
                          if a.startswith(prefix) and a.split(":", 1)[1].isdigit()]
    for staff in session.scalars(select(Staff).where(Staff.id.in_(ids("staff:")))):
        names[f"staff:{staff.id}"] = f"{staff.name} (console)"
    for responder in session.scalars(select(Responder).where(Responder.id.in_(ids("responder:")))):
        names[f"responder:{responder.id}"] = f"{responder.name} (SMS)"
    return names


def open_case(runtime: Runtime, session: Session, account: Account, report: Report) -> CaseFile:
    dispatch.audit(session, report.id, "viewed", "case page", actor=account.actor)
    vault = runtime.vault
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.report_id == report.id)
                                  .order_by(AuditEvent.at, AuditEvent.id)))
    notes = list(session.scalars(select(Note).where(Note.report_id == report.id).order_by(Note.at, Note.id)))
    names = _actor_names(session, {e.actor for e in events} | {f"staff:{n.staff_id}" for n in notes})
    name = lambda actor: names.get(actor, actor)  # noqa: E731
    timeline = [Entry(utc(e.at), name(e.actor), e.action, e.detail or "") for e in events
                if e.action not in ("viewed", "noted")]  # a note is shown with its text instead
    timeline += [Entry(utc(n.at), name(f"staff:{n.staff_id}"), "note", _open(vault, n.body_enc)) for n in notes]
    timeline.sort(key=lambda e: e.at)
    views = [Entry(utc(e.at), name(e.actor), e.action, "") for e in events if e.action == "viewed"]
    sent = (select(Message, Responder).join(Responder, Responder.id == Message.responder_id)
            .where(Message.report_id == report.id, Message.purpose == "alert").order_by(Message.id))
    alerts = [Alert(r.name, r.agency_id, m.state, m.delivery_status, m.failure_reason, utc(m.updated_at))
              for m, r in session.execute(sent)]
    assignments = list(session.scalars(select(Assignment).where(Assignment.report_id == report.id)
                                       .order_by(Assignment.id)))
    phone = _open(vault, report.reporter_phone_enc) if report.contact_ok else None
    return CaseFile(report, _open(vault, report.details_enc), phone, assignments, alerts, timeline, views[-20:])
