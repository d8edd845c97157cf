"""The transactional outbox: a job is first a row, written with the data it concerns, then an
RQ job. If Redis is down or loses the job, the row is still there and `reconcile` enqueues it
again; jobs are idempotent, so enqueuing one twice sends nothing twice."""
from __future__ import annotations

import json
import logging
import os
import random
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from redis.exceptions import RedisError
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.messaging.jobs import JOBS
from gateway.settings import JOB_TIMEOUT_SECONDS, RECONCILE_INTERVAL_SECONDS
from gateway.store.db import BEFORE_COMMIT, UNSYNCED
from gateway.store.models import AuditEvent, Message, Outbox
from gateway.store.states import MessageState

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

# A send still `sending` after this long has lost its worker: the SDK gives up after 13 s and a
# job is killed at JOB_TIMEOUT_SECONDS.
SENDING_STALE_SECONDS = 2 * JOB_TIMEOUT_SECONDS

JITTER = 0.2  # each back-off is stretched or shrunk by up to 20%, so retries do not arrive in herds


def retry_policy(delays, time_scale: float = 1.0) -> Retry:
    return Retry(max=len(delays), interval=[round(d * time_scale * random.uniform(1 - JITTER, 1 + JITTER))
                                            for d in delays])


LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def job_id(job: str, target_id: int) -> str:
    return f"{job}-{target_id}"


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def due(runtime: Runtime, delay: timedelta) -> datetime:
    """When a job `delay` from now should run, with TIME_SCALE applied."""
    return datetime.now(timezone.utc) + delay * runtime.settings.time_scale


def reconcile_interval(runtime: Runtime) -> int:
    """Seconds between reconciler passes (RECONCILE_INTERVAL_SECONDS, with TIME_SCALE)."""
    return max(1, round(RECONCILE_INTERVAL_SECONDS * runtime.settings.time_scale))


def horizon(runtime: Runtime) -> datetime:
    """A job due later than this (an acknowledgement deadline, a broadcast's later SMS) is only
    its row until the reconciler, two passes ahead, hands it to RQ's scheduler for its exact
    time. Redis then holds the next minute of scheduled work, not every open deadline (for up
    to two hours), and a burst of reports does not pay for scheduling
    deadlines it will not reach for an hour."""
    return datetime.now(timezone.utc) + timedelta(seconds=2 * reconcile_interval(runtime))


def _held(runtime: Runtime, not_before: Optional[datetime]) -> bool:
    return not_before is not None and _utc(not_before) > horizon(runtime)


def add(session: Session, job: str, target_id: int, not_before: Optional[datetime] = None, held: bool = False) -> None:
    """Record the job inside the caller's transaction; `not_before` schedules it. Every caller
    hands the job to RQ right after the commit, so the row is written already stamped with that
    first hand-over (one commit per job, not two); `enqueue(..., stamped=True)` takes the stamp
    back if Redis refuses the job. A job `held` for the reconciler is written unstamped."""
    session.add(Outbox(job=job, target_id=target_id, **row_values(not_before, held)))


def row_values(not_before: Optional[datetime] = None, held: bool = False) -> dict:
    """An entry's columns besides its job and target, as `add` writes them: for a caller that
    writes the row with a Core statement."""
    now = datetime.now(timezone.utc)
    return {"created_at": now, "not_before": not_before, "enqueued_at": None if held else now,
            "attempts": 0 if held else 1}


_INSERT_MANY = insert(Outbox)


class Batch:
    """The jobs one transaction owes: recorded with it, handed to RQ once it has committed.
    `jobs` lists those to hand over then; one held for the reconciler (due beyond the
    `horizon`) is only its row, decided once, when it is added.

    Its rows are written together just before the transaction commits, in one statement: nothing
    in a job's transaction reads back the jobs it owes, and a row written through the ORM one at
    a time would cost a flush and an id read back each."""

    def __init__(self, runtime: Runtime, session: Session):
        self.runtime, self.session, self.jobs = runtime, session, []
        # The rows the jobs concern, held: the session's identity map is weak, and a job that
        # sends its first SMS itself reads them back in this transaction (a query each if dropped).
        self.rows: list = []
        self.owed: list[dict] = []

    def add(self, job: str, target_id: int, not_before: Optional[datetime] = None, row=None) -> None:
        held = _held(self.runtime, not_before)
        if not self.owed:
            self.session.info.setdefault(BEFORE_COMMIT, []).append(self._write)
        self.owed.append({"job": job, "target_id": target_id, **row_values(not_before, held)})
        if not held:
            self.jobs.append((job, target_id, not_before))
        if row is not None:
            self.rows.append(row)

    def _write(self) -> None:
        self.session.connection().execute(_INSERT_MANY, self.owed)
        self.owed = []

    def enqueue(self) -> None:
        for job, target_id, not_before in self.jobs:
            enqueue(self.runtime, job, target_id, not_before, stamped=True)


_MARK_DONE = (update(Outbox).where(Outbox.job == bindparam("o_job"), Outbox.target_id == bindparam("o_target"),
                                   Outbox.done_at.is_(None)).values(done_at=bindparam("o_done")))


def mark_done(session, job: str, target_id: int) -> bool:
    """True for the one caller that finished the entry: a job can use it as its claim.
    `session`: a Session or a Connection; the statement is built once, not per call."""
    return bool(session.execute(_MARK_DONE, {"o_job": job, "o_target": target_id,
                                             "o_done": datetime.now(timezone.utc)},
                                execution_options=UNSYNCED).rowcount)


def _stamp(runtime: Runtime, *where, **values) -> None:
    """Write the rows' hand-over bookkeeping (`enqueued_at`, `attempts`)."""
    try:
        with runtime.db.session() as session:
            session.execute(update(Outbox).where(*where).values(**values))
    except SQLAlchemyError as exc:  # bookkeeping only: the reconciler goes by Redis, not by the stamp
        log.warning("outbox stamp not written: %s", type(exc).__name__)


def _handed_over(runtime: Runtime, job: str, target_id: int, not_before: Optional[datetime]) -> bool:
    """To RQ (a scheduled one through RQ's scheduler); False when Redis is unreachable."""
    spec = JOBS[job]
    options = dict(job_id=job_id(job, target_id), job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=3600,
                   retry=retry_policy(spec.backoff, runtime.settings.time_scale), failure_ttl=30 * 86400)
    try:
        if not_before and _utc(not_before) > datetime.now(timezone.utc):
            runtime.queue.enqueue_at(_utc(not_before), spec.entry_point, target_id, **options)
        else:  # RQ alone would send the queue's registration and the job in two round trips
            with runtime.redis.pipeline() as pipe:
                runtime.queue.enqueue(spec.entry_point, target_id, pipeline=pipe, **options)
                pipe.execute()
    except RedisError as exc:
        log.warning("queue unavailable, %s %s left to the reconciler: %s", job, target_id, type(exc).__name__)
        return False
    return True


def enqueue(runtime: Runtime, job: str, target_id: int, not_before: Optional[datetime] = None,
            stamped: bool = False) -> bool:
    """Hand the job to RQ after the transaction committed; False when Redis is unreachable (the
    reconciler will try again). `stamped`: the row was written by `add` in that transaction,
    already counting this hand-over."""
    if _handed_over(runtime, job, target_id, not_before):
        if not stamped:
            _stamp(runtime, Outbox.job == job, Outbox.target_id == target_id, enqueued_at=datetime.now(timezone.utc),
                   attempts=Outbox.attempts + 1)
        return True
    if stamped:  # take back the hand-over `add` counted
        _stamp(runtime, Outbox.job == job, Outbox.target_id == target_id, enqueued_at=None,
               attempts=Outbox.attempts - 1)
    return False


def host_name(runtime=None) -> str:
    """The host part of this process's worker names: WORKER_HOST, else the machine's host name."""
    return (runtime.settings.worker_host if runtime is not None else "") or socket.gethostname()


def worker_name(runtime=None) -> str:
    """Workers are named host:pid:nonce, so a reconciler on the same host can tell at once
    that the worker holding a job was killed (RQ itself notices only when its heartbeat expires)."""
    return f"{host_name(runtime)}:{os.getpid()}:{os.urandom(3).hex()}"


def _worker_gone(name: Optional[str], here: str) -> bool:
    host, _, rest = (name or "").partition(":")
    pid = rest.partition(":")[0]
    if host != here or not pid.isdigit():
        return False  # another host: left to RQ's heartbeat expiry (WORKER_HEARTBEAT_SECONDS)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still answers `kill -0`, but runs nothing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc here, or it just went: the next pass sees
    return stat[stat.rindex(")") + 2:].startswith("Z")


RECONCILE_CHUNK = 500  # job look-ups per Redis round trip
# A worker moves a job from the queue to RQ's intermediate list, then within milliseconds marks
# it started. One still there on a later pass, at least this long after it was first seen, was
# taken by a worker that died in between.
TAKEN_AND_DROPPED_SECONDS = 1.0


def _live(job: Optional[Job], dropped: set[str], here: str) -> bool:
    """Whether RQ will run the job: not if Redis lost it, if its worker died holding it, or if a
    worker took it from the queue and died before starting it (`dropped`)."""
    if job is None:
        return False
    if job.id in dropped:
        log.warning("%s was taken by a worker that died before starting it: enqueued again", job.id)
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.STARTED and _worker_gone(job.worker_name, here):
        log.warning("%s was running on a worker that is gone: enqueued again", job.id)
        return False
    return status in LIVE


def _taken_and_dropped(runtime: Runtime) -> set[str]:
    """Jobs a worker took from the queue and died before starting: still `queued`, in no queue.
    RQ gives such a job up only after a minute, and then as failed; here it is enqueued again
    on the next pass that still finds it. RQ's own first-seen mark dates each sighting."""
    intermediate, stuck = runtime.queue.intermediate_queue, set()
    for found in intermediate.get_job_ids():
        if intermediate.set_first_seen(found):
            continue  # first sighting: a live worker may be about to start it
        first_seen = intermediate.get_first_seen(found)
        if first_seen and (datetime.now(timezone.utc) - first_seen).total_seconds() >= TAKEN_AND_DROPPED_SECONDS:
            stuck.add(found)
    return stuck


def _forget_dropped(runtime: Runtime, found: str) -> None:
    """Once enqueued again, off the intermediate list: RQ would otherwise fail it a minute on."""
    intermediate = runtime.queue.intermediate_queue
    intermediate.remove(found)
    runtime.redis.delete(intermediate.get_first_seen_key(found))


# message id -> the provider's answer to a send whose record the database refused (down)
UNRECORDED_KEY = "sms:unrecorded"


def keep_unrecorded(runtime: Runtime, message_id: int, values: dict) -> None:
    """The provider answered but the database could not take the record: keep the answer in
    Redis, so the reconciler records it instead of sending the SMS again."""
    try:
        runtime.redis.hset(UNRECORDED_KEY, str(message_id), json.dumps(values))
    except RedisError as exc:  # both away: the send is released later, at least once
        log.warning("message %s: outcome kept nowhere: %s", message_id, type(exc).__name__)


def _record_late(session: Session, message_id: int, report_id: Optional[int], purpose: str, kept: bytes) -> bool:
    values = json.loads(kept)
    if not session.execute(update(Message).where(Message.id == message_id, Message.state == MessageState.SENDING)
                           .values(**values)).rowcount:
        return False
    if values["state"] != MessageState.RETRY:
        mark_done(session, "send_sms", message_id)
    session.add(AuditEvent(actor="reconciler", action=f"{purpose}_{values['state']}", report_id=report_id,
                           detail=f"message {message_id}: recorded late, the database was away"))
    return True


def _release_stalled_sends(runtime: Runtime) -> int:
    """A message left `sending` by a worker that died mid-send goes back to `retry`. Its SMS may
    have reached the provider before the crash: at least once, because a lost alert costs more
    than a repeated one. One whose answer was kept in Redis (keep_unrecorded) is recorded."""
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=SENDING_STALE_SECONDS * runtime.settings.time_scale)
    with runtime.db.session() as session:
        stalled = session.execute(select(Message.id, Message.report_id, Message.purpose).where(
            Message.state == MessageState.SENDING, Message.updated_at < cutoff)).all()
        kept = runtime.redis.hmget(UNRECORDED_KEY, [str(m) for m, _, _ in stalled]) if stalled else []
        released = 0
        for (message_id, report_id, purpose), answer in zip(stalled, kept, strict=True):
            if answer is not None:
                _record_late(session, message_id, report_id, purpose, answer)
                continue
            if session.execute(update(Message).where(Message.id == message_id, Message.state == MessageState.SENDING)
                               .values(state=MessageState.RETRY)).rowcount:
                released += 1
                session.add(AuditEvent(actor="reconciler", action="send_released", report_id=report_id,
                                       detail=f"message {message_id}: its worker died mid-send; sent again"))
    if any(answer is not None for answer in kept):
        runtime.redis.hdel(UNRECORDED_KEY, *[str(m) for (m, _, _), a in zip(stalled, kept, strict=True) if a])
    return released


def reconcile(runtime: Runtime) -> int:
    """Hand to RQ every unfinished outbox entry due within the `horizon` that has no live job;
    returns how many: those held until now and those Redis lost.

    Entries further ahead are not looked at: every open deadline on every pass would cost a
    round trip per open case, twice a minute. The hand-overs of a chunk are stamped in one
    transaction, not one each."""
    released = _release_stalled_sends(runtime)
    if released:
        log.warning("reconciler released %d sends stalled by a dead worker", released)
    with runtime.db.session() as session:
        pending = session.execute(select(Outbox.id, Outbox.job, Outbox.target_id, Outbox.not_before).where(
            Outbox.done_at.is_(None), or_(Outbox.not_before.is_(None), Outbox.not_before <= horizon(runtime)))).all()
    count, dropped, here = 0, _taken_and_dropped(runtime) if pending else set(), host_name(runtime)
    for start in range(0, len(pending), RECONCILE_CHUNK):
        chunk, handed = pending[start:start + RECONCILE_CHUNK], []
        jobs = Job.fetch_many([job_id(job, target_id) for _, job, target_id, _ in chunk], connection=runtime.redis)
        for (row_id, job, target_id, not_before), found in zip(chunk, jobs, strict=True):
            if not _live(found, dropped, here) and _handed_over(runtime, job, target_id, not_before):
                handed.append(row_id)
                if found is not None and found.id in dropped:
                    _forget_dropped(runtime, found.id)
        if handed:
            _stamp(runtime, Outbox.id.in_(handed), enqueued_at=datetime.now(timezone.utc),
                   attempts=Outbox.attempts + 1)
        count += len(handed)
    if count:
        log.info("reconciler handed %d outbox jobs to RQ", count)
    return count


def backlog(runtime: Runtime,
            older_than: timedelta = timedelta(minutes=1)) -> list[tuple[str, int, int, datetime, str]]:
    """Work still owed after `older_than`: (job, target, attempts, created, RQ status). What is
    here after its retries is in RQ's failed registry too; an operator's list, never silence."""
    now = datetime.now(timezone.utc)
    with runtime.db.session() as session:  # a deadline still ahead is not owed yet
        rows = session.execute(select(Outbox.job, Outbox.target_id, Outbox.attempts, Outbox.created_at)
                               .where(Outbox.done_at.is_(None), Outbox.created_at < now - older_than,
                                      or_(Outbox.not_before.is_(None), Outbox.not_before <= now))
                               .order_by(Outbox.created_at)).all()
    out = []
    for job, target_id, attempts, created_at in rows:
        try:
            status = str(Job.fetch(job_id(job, target_id), connection=runtime.redis).get_status(refresh=False))
        except NoSuchJobError:
            status = "not in Redis"
        except RedisError:
            status = "Redis unavailable"
        out.append((job, target_id, attempts, created_at, status))
    return out
