"""Sending one SMS: claim it (a compare-and-set on its state), honour STOP, keep within the
global budget and the provider's circuit, send, and record the outcome. Each step is
idempotent, so running a send twice, or two copies at once, sends nothing twice.

`unit_of_work` is the transaction of any job that may queue SMS (alerts, replies): the first
few are claimed inside it and sent once it has committed; the rest go to RQ."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Iterator

from redis.exceptions import RedisError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.channels.base import CHAT_CHANNELS, REJECTED, RETRY, SENT
from gateway.errors import TransientSendError
from gateway.limits import HELD_BY_BUDGET_KEY
from gateway.messaging import chat, outbox
from gateway.messaging.breaker import Breaker
from gateway.messaging.jobs import JOBS, JobName
from gateway.store.db import UNSYNCED
from gateway.store.models import AuditEvent, Contact, Message, utcnow
from gateway.store.states import MESSAGE_MOVES, MessageState, sources

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

CLAIMABLE = sources(MESSAGE_MOVES, MessageState.SENDING)
RECORDED = {SENT: MessageState.SENT, REJECTED: MessageState.REJECTED, RETRY: MessageState.RETRY}  # a send's outcome

UNSTOPPABLE = ("alert", "optout")  # alerts go to registered responders; `optout` confirms a STOP
UNBUDGETED = ("alert",)  # never held by the global send budget: a responder must hear of a report at once
# Alerts a job sends itself once its transaction has committed; the rest go to RQ. Each send
# gives up within SMS_SEND_TIMEOUT_SECONDS and the first failure hands the rest on, so a
# provider outage costs a job one timeout, far under JOB_TIMEOUT_SECONDS.
INLINE_SENDS = 3


@contextmanager
def unit_of_work(rt: Runtime) -> Iterator[outbox.Batch]:
    """A job's transaction that may queue SMS (alerts, replies): yields its Batch. The first
    INLINE_SENDS are claimed inside the same transaction (state `sending`), then sent once it
    has committed: that spares each SMS an RQ job and a claiming
    transaction of its own, and the reader the wait. What is not sent here goes to RQ. A crash
    between the commit and a send leaves what a crash mid-send leaves: the reconciler releases
    the stalled message and it is sent then. The provider's circuit is read before the
    transaction: a Redis round trip inside it would hold SQLite's one write lock the longer."""
    paused = Breaker(rt.redis, rt.settings.time_scale).is_open()
    with rt.db.session() as session:
        batch = outbox.Batch(rt, session)
        yield batch
        first = _first_sends(batch)
        claimed = [] if paused else _claim_first(session, rt, first)
    unsent = _send_claimed(rt, claimed)
    _enqueue_rest(rt, batch, {m.id for m, _ in claimed} - unsent, failed=(paused and bool(first)) or bool(unsent))


def _first_sends(batch: outbox.Batch) -> list[int]:
    """The SMS a job sends itself once committed: the first INLINE_SENDS due now."""
    return [target for job, target, not_before in batch.jobs if (job, not_before) == ("send_sms", None)][:INLINE_SENDS]


def _enqueue_rest(rt: Runtime, batch: outbox.Batch, sent: set[int], failed: bool) -> None:
    """Every job of the batch but the SMS already sent, to RQ. After a failure (or while the
    provider is paused) the SMS wait the first back-off, as a send job that failed would."""
    retry_at = outbox.due(rt, timedelta(seconds=JOBS[JobName.SEND_SMS].backoff[0])) if failed else None
    for job, target_id, not_before in batch.jobs:
        if job != "send_sms":
            outbox.enqueue(rt, job, target_id, not_before, stamped=True)
        elif target_id not in sent:
            outbox.enqueue(rt, job, target_id, not_before or retry_at, stamped=True)


def _claim_first(session, rt: Runtime, message_ids: list[int]) -> list[tuple[Message, str]]:
    """Claim, in the transaction that queued them, the SMS about to be sent in line, with their
    numbers. One to a number that sent STOP, and those after it, are left to `send_sms`, which
    records the suppression."""
    claimed = []
    for message_id in message_ids:
        message = session.get(Message, message_id)  # written in this transaction: no query
        to = rt.vault.decrypt(message.to_enc)
        if _opted_out(session, rt, message, to):
            break
        message.state, message.attempts = MessageState.SENDING, message.attempts + 1
        claimed.append((message, to))
    return claimed


def _send_claimed(rt: Runtime, claimed: list[tuple[Message, str]]) -> set[int]:
    """Send claimed messages in order; the ids not sent. At the first failure the message is
    left as that send recorded it (`retry`) and the rest, never tried, go back to `queued`."""
    breaker = _SuccessesTogether(Breaker(rt.redis, rt.settings.time_scale))
    try:
        for n, (message, to) in enumerate(claimed):
            try:
                _deliver(rt, breaker, message, to, rt.vault.decrypt(message.body_enc))
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, RQ's retries take it from here
                if not isinstance(exc, TransientSendError):
                    log.exception("message %s: sending in line failed; queued", message.id)
                _release(rt, [m.id for m, _ in claimed[n + 1:]])
                return {m.id for m, _ in claimed[n:]}
    finally:
        breaker.settle()
    return set()


class _SuccessesTogether:
    """A breaker for sends in a row: their successes reach Redis once, at the end or before a
    failure, as the one reset they amount to; a failure goes at once."""

    def __init__(self, breaker: Breaker):
        self.breaker, self.succeeded = breaker, False

    def record(self, ok: bool) -> None:
        if ok:
            self.succeeded = True
            return
        self.settle()
        self.breaker.record(ok=False)

    def settle(self) -> None:
        if self.succeeded:
            self.succeeded = False
            self.breaker.record(ok=True)


def _release(rt: Runtime, message_ids: list[int]) -> None:
    """Claimed messages never tried go back to the queue as they were. If that fails too, the
    reconciler releases them once they look stalled."""
    if not message_ids:
        return
    try:
        with rt.db.session() as session:
            session.execute(update(Message).where(Message.id.in_(message_ids),
                                                  Message.state == MessageState.SENDING)
                            .values(state=MessageState.QUEUED, attempts=Message.attempts - 1),
                            execution_options=UNSYNCED)
    except SQLAlchemyError as exc:
        log.warning("messages %s left claimed: %s", message_ids, type(exc).__name__)


def _opted_out(session, rt: Runtime, message: Message, to: str) -> bool:
    """STOP holds for every SMS but its own confirmation and alerts to registered responders."""
    if message.purpose in UNSTOPPABLE:
        return False
    return bool(session.scalar(select(Contact.id).where(Contact.phone_index.in_(rt.vault.blind_indexes(to)),
                                                        Contact.opted_out.is_(True))))


def send_sms(rt: Runtime, message_id: int) -> str:
    """Send one queued SMS; retry on transient failures, record final ones."""
    breaker = Breaker(rt.redis, rt.settings.time_scale)
    if breaker.is_open():  # before the claim: the row stays queued/retry, untouched
        raise TransientSendError(f"message {message_id}: provider paused after repeated failures")
    with rt.db.session() as session:
        claimed = session.execute(
            update(Message).where(Message.id == message_id, Message.state.in_(CLAIMABLE))
            .values(state=MessageState.SENDING, attempts=Message.attempts + 1), execution_options=UNSYNCED).rowcount
        if not claimed:
            state = session.scalar(select(Message.state).where(Message.id == message_id))
            if state != MessageState.SENDING:  # a message in flight keeps its outbox entry until it lands
                outbox.mark_done(session, "send_sms", message_id)
            return f"nothing to send: {state}"
        message = session.get(Message, message_id)
        to, body = rt.vault.decrypt(message.to_enc), rt.vault.decrypt(message.body_enc)
        if _opted_out(session, rt, message, to):
            message.state = MessageState.SUPPRESSED
            outbox.mark_done(session, "send_sms", message_id)
            return "suppressed: the number sent STOP"
    return _deliver(rt, breaker, message, to, body)


def _within_budget(rt: Runtime, message: Message) -> bool:
    """The global outgoing-SMS budget: per-number limits cannot stop replies to many numbers (a
    spoofed sender per message), so SMS to residents share one budget a minute. Alerts are never
    held. A held SMS waits for a later minute like a send that failed; it is counted for /metrics,
    and the first in each minute is logged."""
    if message.purpose in UNBUDGETED or rt.limiter.hit(rt.send_budget, "all"):
        return True
    rt.limiter.give_back(rt.send_budget, "all")  # a held SMS does not use the next one's place
    try:
        rt.redis.incr(HELD_BY_BUDGET_KEY)
    except RedisError:
        pass
    if rt.limiter.first_refusal(rt.send_budget, "all"):
        log.warning("outgoing SMS budget reached (%d a minute): SMS to residents wait, alerts still go",
                    rt.send_budget.count)
    return False


_RECORDED = ("state", "provider", "channel", "provider_message_id", "status_code", "failure_reason")
_RECORD = update(Message).where(Message.id == bindparam("m_id")).values(
    updated_at=bindparam("m_updated"), **{column: bindparam(f"m_{column}") for column in _RECORDED})
_AUDIT = insert(AuditEvent)


def _deliver(rt: Runtime, breaker: Breaker, message: Message, to: str, body: str) -> str:
    """Send a claimed message and record the outcome; raise TransientSendError to be retried."""
    message_id = message.id
    if not _within_budget(rt, message):
        with rt.db.session() as session:
            session.execute(update(Message).where(Message.id == message_id, Message.state == MessageState.SENDING)
                            .values(state=MessageState.RETRY), execution_options=UNSYNCED)
        raise TransientSendError(f"message {message_id}: held by the outgoing SMS budget")
    if message.channel in CHAT_CHANNELS:
        result, provider, channel = chat.send(rt, message, to, body)
    else:
        result, provider, channel = rt.provider.send(to, body), rt.provider.name, None
        breaker.record(ok=result.outcome != RETRY)
    state = RECORDED[result.outcome]
    # Cut to the column: PostgreSQL refuses a longer value, which would leave the row in `sending`.
    reason = result.reason[:Message.failure_reason.type.length] if result.reason else None
    values = dict(state=state, provider=provider, channel=channel, provider_message_id=result.provider_message_id,
                  status_code=result.status_code, failure_reason=reason)
    try:
        with rt.db.session() as session:
            conn = session.connection()  # Core statements: nothing here is loaded or kept
            conn.execute(_RECORD, {"m_id": message_id, "m_updated": utcnow(),
                                   **{f"m_{column}": values[column] for column in _RECORDED}})
            if not result.retryable:
                outbox.mark_done(conn, JobName.SEND_SMS, message_id)
                conn.execute(_AUDIT, {"actor": "sender", "action": f"{message.purpose}_{state}",
                                      "report_id": message.report_id, "at": utcnow(),
                                      "detail": f"message {message_id}: {result.reason or result.status_code}"})
    except SQLAlchemyError:  # sent, but not recorded: the reconciler records it, not sends it again
        outbox.keep_unrecorded(rt, message_id, values)
        raise
    if result.retryable:
        raise TransientSendError(f"message {message_id}: {result.reason}")
    return state


