"""Retention: personal data is kept only as long as it serves the case (UU 27/2022 asks for
minimisation and limited retention).

After RETENTION_DAYS from its closing, a report loses its reporter's number, its blind index
and its own words; its alerts and replies lose recipient and text, staff notes their text. What stays is what the
statistics and the audit need: category, area, times, states. Incoming SMS lose sender and text
after INBOX_RETENTION_DAYS, and so do replies tied to no report; finished outbox rows are
deleted then too. Every purge of a
report is an audit row. Contacts stay: they hold a STOP, which must outlive everything else."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from gateway.store.models import AuditEvent, InboundMessage, Message, Note, Outbox, Report
from gateway.store.states import UNFINISHED_MESSAGES

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

PURGED = ""  # what a purged *_enc or *_index column holds: nothing to decrypt, nothing to match


@dataclass(frozen=True)
class Purged:
    reports: int
    messages: int
    notes: int
    inbound: int
    outbox: int


def purge(runtime: Runtime, now: datetime = None) -> Purged:
    now = now or datetime.now(timezone.utc)
    settings = runtime.settings
    closed_before = now - timedelta(days=settings.retention_days)
    inbox_before = now - timedelta(days=settings.inbox_retention_days)
    with runtime.db.session() as session:
        report_ids = list(session.scalars(select(Report.id).where(
            Report.closed_at.is_not(None), Report.closed_at < closed_before,
            (Report.reporter_phone_enc.is_not(None)) | (Report.details_enc.is_not(None)))))
        if report_ids:
            session.execute(update(Report).where(Report.id.in_(report_ids)).values(
                reporter_phone_enc=None, reporter_index=None, details_enc=None))
            session.add_all(AuditEvent(actor="retention", action="purged", report_id=report_id,
                                       detail=f"closed before {closed_before:%Y-%m-%d}: numbers and text removed")
                            for report_id in report_ids)
        messages = session.execute(update(Message).where(Message.report_id.in_(report_ids)).values(
            to_enc=PURGED, to_index=PURGED, body_enc=PURGED)).rowcount if report_ids else 0
        messages += session.execute(update(Message).where(  # replies and notices not tied to a report
            Message.report_id.is_(None), Message.created_at < inbox_before,
            Message.state.not_in(UNFINISHED_MESSAGES), Message.body_enc != PURGED)
            .values(to_enc=PURGED, to_index=PURGED, body_enc=PURGED)).rowcount
        notes = session.execute(update(Note).where(Note.report_id.in_(report_ids)).values(
            body_enc=PURGED)).rowcount if report_ids else 0
        inbound = session.execute(update(InboundMessage).where(
            InboundMessage.received_at < inbox_before, InboundMessage.handled_at.is_not(None),
            InboundMessage.text_enc != PURGED).values(sender_enc=PURGED, sender_index=PURGED,
                                                      text_enc=PURGED)).rowcount
        finished = session.execute(delete(Outbox).where(Outbox.done_at.is_not(None),
                                                        Outbox.done_at < inbox_before)).rowcount
    result = Purged(len(report_ids), messages, notes, inbound, finished)
    if any(vars(result).values()):
        log.info("retention purge: %s", result)
    return result
