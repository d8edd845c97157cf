"""What staff can do to a case. Each action is one transaction with its audit row; jobs it
creates (alerts, the reporter's feedback SMS) go through the outbox and are enqueued only
after the commit, as everywhere else. Each returns the sentence the page shows."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from gateway.cases import dispatch
from gateway.channels.base import chat_channel
from gateway.console.accounts import Account
from gateway.messaging import outbox
from gateway.store.models import Assignment, Note, Report
from gateway.store.states import ReportStatus

if TYPE_CHECKING:
    from gateway.runtime import Runtime

NOTE_MAX_CHARS = 2000
REROUTABLE = (ReportStatus.ROUTED, ReportStatus.UNASSIGNED, ReportStatus.ACKNOWLEDGED)


class Refused(Exception):
    """The action does not apply to this case now; the message says why."""


def acknowledge(runtime: Runtime, batch: outbox.Batch, account: Account, report: Report) -> str:
    if account.role != "agency_staff":
        raise Refused("Only an agency's own staff acknowledge its cases.")
    if report.closed_at is not None:
        raise Refused("The case is closed.")
    first = dispatch.acknowledge(batch.session, report, account.agency_id, account.actor)
    if first:
        _feedback(runtime, batch, report)
        return "Acknowledged. The escalation for your agency is stopped."
    return "Acknowledged for your agency (the case had already been acknowledged)."


def _feedback(runtime: Runtime, batch: outbox.Batch, report: Report) -> None:
    """As for TERIMA by SMS: one neutral SMS to a reporter who agreed to be contacted."""
    if report.contact_ok and report.reporter_phone_enc:
        body = runtime.content.catalog.text(report.lang, "sms.feedback", ref=report.ref)
        dispatch.queue_sms(runtime, batch, runtime.vault.decrypt(report.reporter_phone_enc), body, "feedback",
                           channel=chat_channel(report.channel), report_id=report.id)


def add_note(runtime: Runtime, batch: outbox.Batch, account: Account, report: Report, text: str) -> str:
    text = text.strip()
    if not text:
        raise Refused("The note is empty.")
    if len(text) > NOTE_MAX_CHARS:
        raise Refused(f"A note has at most {NOTE_MAX_CHARS} characters.")
    batch.session.add(Note(report_id=report.id, staff_id=account.id, body_enc=runtime.vault.encrypt(text)))
    dispatch.audit(batch.session, report.id, "noted", "", actor=account.actor)  # the text stays in the note
    return "Note added."


def close(runtime: Runtime, batch: outbox.Batch, account: Account, report: Report) -> str:
    """Agency staff close their agency's part, as SELESAI does; a coordinator closes the case."""
    if report.closed_at is not None:
        raise Refused("The case was already closed.")
    if account.role == "agency_staff":
        closed = dispatch.close_for_agency(batch.session, report, account.agency_id, account.actor)
        if closed is None:
            raise Refused("Your agency has already closed its part of this case.")
        if closed == "agency":
            return "Closed for your agency. The case stays open until every agency alerted has closed it."
    elif not dispatch.close(batch.session, report, account.role, account.actor):
        raise Refused("The case was already closed.")
    return "Case closed."


def reroute(runtime: Runtime, batch: outbox.Batch, account: Account, report: Report, agency_id: str) -> str:
    directory = runtime.content.directory
    if agency_id not in {a.id for a in directory.agencies}:
        raise Refused("Choose an agency from the list.")
    if report.status not in REROUTABLE:
        raise Refused(f"A case that is {report.status} cannot be re-routed.")
    before = set(batch.session.scalars(select(Assignment.agency_id).where(Assignment.report_id == report.id)))
    dispatch.audit(batch.session, report.id, "rerouted", f"to {agency_id}", actor=account.actor)
    assignment = dispatch.assign(runtime, batch, report, agency_id, f"re-routed by {account.actor}")
    if assignment is None:
        return f"Nobody in the chain of {directory.agency(agency_id).short} has a duty number; nothing was sent."
    if assignment.agency_id in before:
        return f"{directory.agency(assignment.agency_id).short} already has this case; nothing new was sent."
    if report.status == ReportStatus.UNASSIGNED:
        report.status = ReportStatus.ROUTED
    return f"Re-routed: {directory.agency(assignment.agency_id).short} is alerted."
