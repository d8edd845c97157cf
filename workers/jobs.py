"""RQ jobs. They take ids, never personal data (job arguments sit in Redis in clear), and are
idempotent: each claims its work with a compare-and-set on a row's state, so running a job
twice, or two copies at once, sends nothing twice."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator

from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from gateway import community, dispatch, outbox
from gateway.limits import HELD_BY_BUDGET_KEY
from gateway.routing import Case, route
from gateway.sms.base import REJECTED, RETRY, SENT
from gateway.sms.breaker import Breaker
from gateway.sms_desk import SmsDesk
from gateway.store.db import UNSYNCED
from gateway.store.models import AuditEvent, Contact, Message, Report, Responder

from .errors import TransientSendError
from .runtime import runtime

log = logging.getLogger(__name__)

UNSTOPPABLE = ("alert", "optout")  # alerts go to registered responders; `optout` confirms a STOP
UNBUDGETED = ("alert",)  # never held by the global send budget: a responder must hear of a report at once
# Alerts a job sends itself once its transaction has committed; the rest go to RQ. Each send
# gives up within SMS_SEND_TIMEOUT_SECONDS and the first failure hands the rest on, so a
# provider outage costs a job one timeout, far under JOB_TIMEOUT_SECONDS.
INLINE_SENDS = 3


@contextmanager
def _unit_of_work(rt) -> Iterator[outbox.Batch]:
    """A job's transaction that may queue SMS (alerts, replies): yields its Batch. The first
    INLINE_SENDS are claimed inside the same transaction (state `sending`), then sent once it
    has committed: that spares each SMS an RQ job (about 5 ms of worker CPU) and a claiming
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


def _enqueue_rest(rt, batch: outbox.Batch, sent: set[int], failed: bool) -> None:
    """Every job of the batch but the SMS already sent, to RQ. After a failure (or while the
    provider is paused) the SMS wait the first back-off, as a send job that failed would."""
    retry_at = outbox.due(rt, timedelta(seconds=outbox.JOBS["send_sms"][1][0])) if failed else None
    for job, target_id, not_before in batch.jobs:
        if job != "send_sms":
            outbox.enqueue(rt, job, target_id, not_before, stamped=True)
        elif target_id not in sent:
            outbox.enqueue(rt, job, target_id, not_before or retry_at, stamped=True)


def _claim_first(session, rt, message_ids: list[int]) -> list[tuple[Message, str]]:
    """Claim, in the transaction that queued them, the SMS about to be sent in line, with their
    numbers. One to a number that sent STOP, and those after it, are left to `send_sms`, which
    records the suppression."""
    claimed = []
    for message_id in message_ids:
        message = session.get(Message, message_id)  # written in this transaction: no query
        to = rt.vault.decrypt(message.to_enc)
        if _opted_out(session, rt, message, to):
            break
        message.state, message.attempts = "sending", message.attempts + 1
        claimed.append((message, to))
    return claimed


def _send_claimed(rt, claimed: list[tuple[Message, str]]) -> set[int]:
    """Send claimed messages in order; the ids not sent. At the first failure the message is
    left as that send recorded it (`retry`) and the rest, never tried, go back to `queued`."""
    breaker = Breaker(rt.redis, rt.settings.time_scale)
    for n, (message, to) in enumerate(claimed):
        try:
            _deliver(rt, breaker, message, to, rt.vault.decrypt(message.body_enc))
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, RQ's retries take it from here
            if not isinstance(exc, TransientSendError):
                log.exception("message %s: sending in line failed; queued", message.id)
            _release(rt, [m.id for m, _ in claimed[n + 1:]])
            return {m.id for m, _ in claimed[n:]}
    return set()


def _release(rt, message_ids: list[int]) -> None:
    """Claimed messages never tried go back to the queue as they were. If that fails too, the
    reconciler releases them once they look stalled."""
    if not message_ids:
        return
    try:
        with rt.db.session() as session:
            session.execute(update(Message).where(Message.id.in_(message_ids), Message.state == "sending")
                            .values(state="queued", attempts=Message.attempts - 1), execution_options=UNSYNCED)
    except SQLAlchemyError as exc:
        log.warning("messages %s left claimed: %s", message_ids, type(exc).__name__)


def route_report(report_id: int) -> str:
    """Choose the agencies for a report; each gets an assignment, alerts and a deadline."""
    rt = runtime()
    with _unit_of_work(rt) as batch:
        session = batch.session
        claimed = session.execute(update(Report).where(Report.id == report_id, Report.status == "received")
                                  .values(status="routed", routed_at=datetime.now(timezone.utc)),
                                  execution_options=UNSYNCED).rowcount
        outbox.mark_done(session, "route_report", report_id)
        if not claimed:
            return "already routed"
        report = session.get(Report, report_id)
        for decision in route(Case.of(report), rt.content.directory, datetime.now(timezone.utc)):
            dispatch.audit(session, report_id, "routed", f"{decision.agency_id}: {decision.reason}")
            dispatch.assign(rt, batch, report, decision.agency_id, decision.reason)
        alerts = sum(job == "send_sms" for job, _, _ in batch.jobs)
        if not alerts:
            report.status = "unassigned"
            log.error("report %s has no responder to alert: register duty numbers", report_id)
    return f"{alerts} alerts queued"


def check_ack(assignment_id: int) -> str:
    """An assignment's deadline: escalate it one level up unless acknowledged (gateway.dispatch)."""
    rt = runtime()
    with _unit_of_work(rt) as batch:
        outcome = dispatch.check(rt, batch, assignment_id)
    return outcome


def _opted_out(session, rt, message: Message, to: str) -> bool:
    """STOP holds for every SMS but its own confirmation and alerts to registered responders."""
    if message.purpose in UNSTOPPABLE:
        return False
    return bool(session.scalar(select(Contact.id).where(Contact.phone_index.in_(rt.vault.blind_indexes(to)),
                                                        Contact.opted_out.is_(True))))


def send_sms(message_id: int) -> str:
    """Send one queued SMS; retry on transient failures, record final ones."""
    rt = runtime()
    breaker = Breaker(rt.redis, rt.settings.time_scale)
    if breaker.is_open():  # before the claim: the row stays queued/retry, untouched
        raise TransientSendError(f"message {message_id}: provider paused after repeated failures")
    with rt.db.session() as session:
        claimed = session.execute(
            update(Message).where(Message.id == message_id, Message.state.in_(("queued", "retry")))
            .values(state="sending", attempts=Message.attempts + 1), execution_options=UNSYNCED).rowcount
        if not claimed:
            state = session.scalar(select(Message.state).where(Message.id == message_id))
            if state != "sending":  # a message in flight keeps its outbox entry until it lands
                outbox.mark_done(session, "send_sms", message_id)
            return f"nothing to send: {state}"
        message = session.get(Message, message_id)
        to, body = rt.vault.decrypt(message.to_enc), rt.vault.decrypt(message.body_enc)
        if _opted_out(session, rt, message, to):
            message.state = "suppressed"
            outbox.mark_done(session, "send_sms", message_id)
            return "suppressed: the number sent STOP"
    return _deliver(rt, breaker, message, to, body)


def _within_budget(rt, message: Message) -> bool:
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


def _deliver(rt, breaker: Breaker, message: Message, to: str, body: str) -> str:
    """Send a claimed message and record the outcome; raise TransientSendError to be retried."""
    message_id = message.id
    if not _within_budget(rt, message):
        with rt.db.session() as session:
            session.execute(update(Message).where(Message.id == message_id, Message.state == "sending")
                            .values(state="retry"), execution_options=UNSYNCED)
        raise TransientSendError(f"message {message_id}: held by the outgoing SMS budget")
    result = rt.provider.send(to, body)
    breaker.record(ok=result.outcome != RETRY)
    state = {SENT: "sent", REJECTED: "rejected", RETRY: "retry"}[result.outcome]
    # Cut to the column: PostgreSQL refuses a longer value, which would leave the row in `sending`.
    reason = result.reason[:Message.failure_reason.type.length] if result.reason else None
    values = dict(state=state, provider=rt.provider.name, provider_message_id=result.provider_message_id,
                  status_code=result.status_code, failure_reason=reason)
    try:
        with rt.db.session() as session:
            session.execute(update(Message).where(Message.id == message_id).values(**values),
                            execution_options=UNSYNCED)
            if not result.retryable:
                outbox.mark_done(session, "send_sms", message_id)
                session.add(AuditEvent(actor="sender", action=f"{message.purpose}_{state}",
                                       report_id=message.report_id,
                                       detail=f"message {message_id}: {result.reason or result.status_code}"))
    except SQLAlchemyError:  # sent, but not recorded: the reconciler records it, not sends it again
        outbox.keep_unrecorded(rt, message_id, values)
        raise
    if result.retryable:
        raise TransientSendError(f"message {message_id}: {result.reason}")
    return state


def handle_sms(inbound_id: int) -> str:
    """Answer one incoming SMS (see gateway.sms_desk)."""
    return _sms_desk().handle(inbound_id)


def finish_report(report_id: int) -> str:
    """File an SMS report whose follow-up questions went unanswered."""
    return _sms_desk().finish(report_id)


def _sms_desk() -> SmsDesk:
    """The SMS desk as a job uses it: the replies a turn queues are sent by the job itself."""
    rt = runtime()
    return SmsDesk(rt, unit_of_work=lambda: _unit_of_work(rt))


def alert_next(message_id: int) -> str:
    """An alert that will not arrive: send it to the next duty number not yet alerted, in the
    same agency first, then up its escalation chain. Claimed through its outbox entry, so two
    copies of the job alert one person, not two."""
    rt = runtime()
    with _unit_of_work(rt) as batch:
        session = batch.session
        if not outbox.mark_done(session, "alert_next", message_id):
            return "already handled"
        failed = session.get(Message, message_id)
        agency_id = session.scalar(select(Responder.agency_id).where(Responder.id == failed.responder_id))
        already = dispatch.alerted(session, failed.report_id)
        candidates = (r for agency in rt.content.directory.chain(agency_id)
                      for r in dispatch.responders(session, agency.id, rt.settings.demo_roster_allowed))
        nxt = next((r for r in candidates if r.id not in already), None)
        if nxt is None:
            dispatch.audit(session, failed.report_id, "no_next_responder",
                           f"{agency_id}: every duty number up the chain was tried")
            log.error("report %s: no further duty number from %s up", failed.report_id, agency_id)
            return "no further duty number"
        message = dispatch.queue_alert(rt, batch, failed.report_id, nxt, rt.vault.decrypt(failed.body_enc))
        dispatch.audit(session, failed.report_id, "alert_next",
                       f"{nxt.agency_id}: responder {nxt.id} after message {message_id} failed")
    return f"alert re-sent as message {message.id}"


def send_broadcast(broadcast_id: int) -> str:
    """Queue an awareness broadcast's messages (gateway.community)."""
    return community.send_broadcast(runtime(), broadcast_id)
