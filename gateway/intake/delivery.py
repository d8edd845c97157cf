"""Delivery reports: the provider's word on each SMS after it was accepted. A responder alert
that will not arrive is handed to the agency's next duty number, exactly once: the move to
`failed` is a compare-and-set, and only the report that makes it adds the follow-up job."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from gateway.channels.base import DeliveryReport
from gateway.messaging import outbox
from gateway.store.models import AuditEvent, Message
from gateway.store.states import MESSAGE_MOVES, MessageState, sources

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

# The states a delivery report may move a message out of (a provider's report never touches
# a message still being sent, whose outcome the sender records).
FROM_STATES = {state: tuple(s for s in sources(MESSAGE_MOVES, state) if s != MessageState.SENDING)
               for state in (MessageState.SENT, MessageState.DELIVERED, MessageState.FAILED)}


def apply(runtime: Runtime, report: DeliveryReport) -> str:
    with runtime.db.session() as session:
        message = session.scalar(select(Message).where(Message.provider_message_id == report.provider_message_id))
        if message is None:
            return "unknown message"
        values = {"delivery_status": report.status}
        moved = session.execute(update(Message).where(Message.id == message.id,
                                                      Message.state.in_(FROM_STATES[report.state]))
                                .values(state=report.state, **values,
                                        **({"failure_reason": report.reason} if report.reason else {}))).rowcount
        if not moved:
            session.execute(update(Message).where(Message.id == message.id).values(**values))
            return "recorded"
        if report.state == MessageState.FAILED and message.purpose == "alert":
            session.add(AuditEvent(actor="provider", action="alert_failed", report_id=message.report_id,
                                   detail=f"message {message.id}: {report.status} {report.reason or ''}".strip()))
            outbox.add(session, "alert_next", message.id)
            message_id = message.id
        else:
            return report.state
    outbox.enqueue(runtime, "alert_next", message_id, stamped=True)
    return "failed: next duty number"
