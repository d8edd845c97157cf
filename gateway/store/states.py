"""The states a report, an outgoing message, an assignment and a broadcast move through, and
the moves allowed between them, in one place.

Every move is a compare-and-set on the row's state (`UPDATE … WHERE state IN (sources)`), so
two workers, a retried job or a late provider callback can never both make it; the `sources`
of a move are read from these tables, never written out by hand at the call."""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping, TypeVar


class ReportStatus(StrEnum):
    INCOMPLETE = "incomplete"      # an SMS report waiting for a follow-up answer
    RECEIVED = "received"          # filed, not routed yet
    ROUTED = "routed"              # its agencies are alerted
    UNASSIGNED = "unassigned"      # no duty number to alert: the console shows it
    ACKNOWLEDGED = "acknowledged"  # a responder took it
    CLOSED = "closed"


class MessageState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"        # claimed by one worker
    RETRY = "retry"            # a send failed for now; RQ tries again
    SENT = "sent"              # accepted by the provider
    DELIVERED = "delivered"    # on the handset
    FAILED = "failed"          # the provider says it will not arrive
    REJECTED = "rejected"      # refused by the provider for good
    SUPPRESSED = "suppressed"  # the number sent STOP


class AssignmentState(StrEnum):
    WAITING = "waiting"            # for an acknowledgement, until its deadline
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"        # its deadline passed: an assignment one level up took over
    UNANSWERED = "unanswered"      # its deadline passed with nobody above
    CLOSED = "closed"


class BroadcastState(StrEnum):
    SCHEDULED = "scheduled"
    SENT = "sent"  # its messages are queued


State = TypeVar("State", ReportStatus, MessageState, AssignmentState, BroadcastState)

REPORT_MOVES: Mapping[ReportStatus, frozenset[ReportStatus]] = {
    ReportStatus.INCOMPLETE: frozenset({ReportStatus.RECEIVED, ReportStatus.ACKNOWLEDGED, ReportStatus.CLOSED}),
    ReportStatus.RECEIVED: frozenset({ReportStatus.ROUTED, ReportStatus.ACKNOWLEDGED, ReportStatus.CLOSED}),
    ReportStatus.ROUTED: frozenset({ReportStatus.UNASSIGNED, ReportStatus.ACKNOWLEDGED, ReportStatus.CLOSED}),
    ReportStatus.UNASSIGNED: frozenset({ReportStatus.ROUTED, ReportStatus.ACKNOWLEDGED, ReportStatus.CLOSED}),
    ReportStatus.ACKNOWLEDGED: frozenset({ReportStatus.ACKNOWLEDGED, ReportStatus.CLOSED}),
    ReportStatus.CLOSED: frozenset(),
}

MESSAGE_MOVES: Mapping[MessageState, frozenset[MessageState]] = {
    MessageState.QUEUED: frozenset({MessageState.SENDING}),
    MessageState.RETRY: frozenset({MessageState.SENDING}),
    # Back to `queued` when claimed but never tried; to `retry` when held by the budget or
    # released by the reconciler after its worker died mid-send.
    MessageState.SENDING: frozenset({MessageState.SENT, MessageState.REJECTED, MessageState.RETRY,
                                     MessageState.QUEUED, MessageState.SUPPRESSED}),
    # A provider's delivery report: a late "sent" never undoes "delivered".
    MessageState.SENT: frozenset({MessageState.SENT, MessageState.DELIVERED, MessageState.FAILED}),
    MessageState.DELIVERED: frozenset({MessageState.FAILED}),
    MessageState.FAILED: frozenset(),
    MessageState.REJECTED: frozenset(),
    MessageState.SUPPRESSED: frozenset(),
}

ASSIGNMENT_MOVES: Mapping[AssignmentState, frozenset[AssignmentState]] = {
    AssignmentState.WAITING: frozenset({AssignmentState.ACKNOWLEDGED, AssignmentState.ESCALATED,
                                        AssignmentState.UNANSWERED, AssignmentState.CLOSED}),
    AssignmentState.ACKNOWLEDGED: frozenset({AssignmentState.CLOSED}),
    AssignmentState.UNANSWERED: frozenset({AssignmentState.CLOSED}),
    AssignmentState.ESCALATED: frozenset(),
    AssignmentState.CLOSED: frozenset(),
}

BROADCAST_MOVES: Mapping[BroadcastState, frozenset[BroadcastState]] = {
    BroadcastState.SCHEDULED: frozenset({BroadcastState.SENT}),
    BroadcastState.SENT: frozenset(),
}

# Messages whose fate is still open: never purged, still owed a send.
UNFINISHED_MESSAGES = (MessageState.QUEUED, MessageState.SENDING, MessageState.RETRY)
# An agency that still has the case.
OPEN_ASSIGNMENTS = (AssignmentState.WAITING, AssignmentState.ACKNOWLEDGED, AssignmentState.UNANSWERED)
OPEN_REPORTS = (ReportStatus.RECEIVED, ReportStatus.ROUTED, ReportStatus.UNASSIGNED, ReportStatus.INCOMPLETE)


def sources(moves: Mapping[State, frozenset[State]], target: State) -> tuple[State, ...]:
    """The states a row may be in for a compare-and-set that moves it to `target`."""
    return tuple(state for state, targets in moves.items() if target in targets)
