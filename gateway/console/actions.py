"""What staff can do to a case. Each action is one transaction with its audit row; jobs it
creates (alerts, the reporter's feedback SMS) go through the outbox and are enqueued only
after the commit, as everywhere else. Each returns the sentence the page shows, in the staff
member's language."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask_babel import gettext as _
from sqlalchemy import select

from gateway.cases import dispatch
from gateway.channels.base import chat_channel
from gateway.console.accounts import Account
from gateway.console.labels import Labels
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
        raise Refused(_("Only an agency's own staff acknowledge its cases."))
    if report.closed_at is not None:
        raise Refused(_("The case is closed."))
    first = dispatch.acknowledge(batch.session, report, account.agency_id, account.actor)
    if first:
        _feedback(runtime, batch, report)
        return _("Acknowledged. The escalation for your agency is stopped.")
    return _("Acknowledged for your agency (the case had already been acknowledged).")


def _feedback(runtime: Runtime, batch: outbox.Batch, report: Report) -> None:
    """As for TERIMA by SMS: one neutral SMS to a reporter who agreed to be contacted."""
    if report.contact_ok and report.reporter_phone_enc:
        body = runtime.content.catalog.text(report.lang, "sms.feedback", ref=report.ref)
        dispatch.queue_sms(runtime, batch, runtime.vault.decrypt(report.reporter_phone_enc), body, "feedback",
                           channel=chat_channel(report.channel), report_id=report.id)


def add_note(runtime: Runtime, batch: outbox.Batch, account: Account, report: Report, text: str) -> str:
    text = text.strip()
    if not text:
        raise Refused(_("The note is empty."))
    if len(text) > NOTE_MAX_CHARS:
        raise Refused(_("A note has at most %(n)s characters.", n=NOTE_MAX_CHARS))
    batch.session.add(Note(report_id=report.id, staff_id=account.id, body_enc=runtime.vault.encrypt(text)))
    dispatch.audit(batch.session, report.id, "noted", "", actor=account.actor)  # the text stays in the note
    return _("Note added.")


def close(runtime: Runtime, batch: outbox.Batch, account: Account, report: Report) -> str:
    """Agency staff close their agency's part, as SELESAI does; a coordinator closes the case."""
    if report.closed_at is not None:
        raise Refused(_("The case was already closed."))
    if account.role == "agency_staff":
        closed = dispatch.close_for_agency(batch.session, report, account.agency_id, account.actor)
        if closed is None:
            raise Refused(_("Your agency has already closed its part of this case."))
        if closed == "agency":
            return _("Closed for your agency. The case stays open until every agency alerted has closed it.")
    elif not dispatch.close(batch.session, report, account.role, account.actor):
        raise Refused(_("The case was already closed."))
    return _("Case closed.")


def reroute(runtime: Runtime, batch: outbox.Batch, account: Account, report: Report, agency_id: str) -> str:
    directory = runtime.content.directory
    if agency_id not in {a.id for a in directory.agencies}:
        raise Refused(_("Choose an agency from the list."))
    if report.status not in REROUTABLE:
        raise Refused(_("A case that is %(status)s cannot be re-routed.",
                         status=Labels(runtime.content).status(report.status)))
    before = set(batch.session.scalars(select(Assignment.agency_id).where(Assignment.report_id == report.id)))
    dispatch.audit(batch.session, report.id, "rerouted", f"to {agency_id}", actor=account.actor)
    assignment = dispatch.assign(runtime, batch, report, agency_id, f"re-routed by {account.actor}")
    if assignment is None:
        return _("Nobody at %(agency)s or above it has a duty number; nothing was sent.",
                 agency=directory.agency(agency_id).short)
    if assignment.agency_id in before:
        return _("%(agency)s already has this case; nothing new was sent.",
                 agency=directory.agency(assignment.agency_id).short)
    if report.status == ReportStatus.UNASSIGNED:
        report.status = ReportStatus.ROUTED
    return _("Re-routed: %(agency)s is alerted.", agency=directory.agency(assignment.agency_id).short)
