"""The pieces that keep work from being lost or repeated: the provider circuit breaker, the
release of sends stalled by a dead worker, jobs held by a killed worker, the periodic
reconciler in a running worker, and the operator's backlog."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from conftest import wait_until
from phone import Phone, flask_transport
from rq.job import Job, JobStatus
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from gateway.cases import dispatch, roster
from gateway.errors import TransientSendError
from gateway.messaging import outbox
from gateway.messaging.breaker import FAILURES_TO_OPEN, OPEN_KEY, Breaker
from gateway.settings import Settings
from gateway.store.models import Message, Outbox
from workers import jobs

NUMBER = "+6281234565678"


@pytest.fixture
def at_runtime(at_app, monkeypatch):
    rt = at_app.extensions["gateway"].runtime
    monkeypatch.setattr(jobs, "runtime", lambda: rt)
    return rt


def queue_sms(rt, state: str = "queued") -> int:
    """A reply and its send job, queued in RQ as the web or a job would leave it."""
    with rt.db.session() as session:
        batch = outbox.Batch(rt, session)
        message_id = dispatch.queue_sms(rt, batch, NUMBER, "Tanda TPPO: test.", "reply").id
        session.execute(update(Message).where(Message.id == message_id).values(state=state))
    batch.enqueue()
    return message_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hold(rt, message_id: int, worker: str) -> Job:
    """Mark the message's job as started by `worker` (host:pid:nonce)."""
    job = Job.fetch(outbox.job_id("send_sms", message_id), connection=rt.redis)
    job.set_status(JobStatus.STARTED)
    job.worker_name = worker
    job.save()
    return job


def dead_worker() -> str:
    return f"{outbox.worker_name().split(':')[0]}:{_dead_pid()}:abc"


def send(message_id: int) -> str:
    try:
        return jobs.send_sms(message_id)
    except TransientSendError as exc:
        return f"retry: {exc}"


def test_breaker_opens_after_repeated_failures_and_a_success_closes_it(at_runtime, fake_at):
    fake_at.fail_next(FAILURES_TO_OPEN, 500)
    ids = [queue_sms(at_runtime) for _ in range(FAILURES_TO_OPEN + 1)]
    for message_id in ids[:FAILURES_TO_OPEN]:
        assert send(message_id).startswith("retry")
    assert fake_at.requests_seen == FAILURES_TO_OPEN

    paused = send(ids[-1])
    assert "provider paused" in paused and fake_at.requests_seen == FAILURES_TO_OPEN  # no request while open
    with at_runtime.db.session() as session:
        assert session.get(Message, ids[-1]).state == "queued"  # untouched, still owed

    at_runtime.redis.delete(OPEN_KEY)  # the pause is over
    assert send(ids[-1]) == "sent" and send(ids[0]) == "sent"
    assert not Breaker(at_runtime.redis).is_open()


def test_breaker_never_blocks_when_redis_is_down():
    down = redis.Redis(port=1, socket_connect_timeout=0.2)
    breaker = Breaker(down)
    breaker.record(ok=False)
    assert breaker.is_open() is False


def test_a_send_stalled_by_a_dead_worker_is_released_and_sent(at_runtime, fake_at):
    message_id = queue_sms(at_runtime, state="sending")
    hold(at_runtime, message_id, outbox.worker_name())  # a live worker is sending it
    assert send(message_id) == "nothing to send: sending"  # a stray copy leaves it alone
    assert outbox.reconcile(at_runtime) == 0

    hold(at_runtime, message_id, dead_worker())  # that worker was killed mid-send
    assert outbox.reconcile(at_runtime) == 1  # the job runs again, but the row still says sending...
    assert send(message_id) == "nothing to send: sending" and fake_at.requests_seen == 0
    stale = datetime.now(timezone.utc) - timedelta(seconds=outbox.SENDING_STALE_SECONDS + 1)
    with at_runtime.db.session() as session:
        session.execute(update(Message).where(Message.id == message_id).values(updated_at=stale))
    hold(at_runtime, message_id, dead_worker())
    assert outbox.reconcile(at_runtime) == 1  # ... until it is stale: released to retry
    assert send(message_id) == "sent" and len(fake_at.messages) == 1


def test_a_send_the_database_could_not_record_is_recorded_late_not_sent_again(at_runtime, fake_at, monkeypatch):
    """The database goes away between the provider's accept and the record: the answer waits
    in Redis, and the reconciler records it once the message looks stalled, instead of
    releasing it to be sent again."""
    message_id = queue_sms(at_runtime)
    provider_send, session = at_runtime.provider.send, at_runtime.db.session

    def database_gone():
        raise OperationalError("UPDATE messages", {}, Exception("server closed the connection"))

    def send_then_lose_the_database(to, body):
        result = provider_send(to, body)
        monkeypatch.setattr(at_runtime.db, "session", database_gone)
        return result

    monkeypatch.setattr(at_runtime.provider, "send", send_then_lose_the_database)
    with pytest.raises(OperationalError):
        jobs.send_sms(message_id)
    monkeypatch.setattr(at_runtime.db, "session", session)  # back
    assert len(fake_at.messages) == 1
    with at_runtime.db.session() as s:
        assert s.get(Message, message_id).state == "sending"
        s.execute(update(Message).where(Message.id == message_id).values(
            updated_at=datetime.now(timezone.utc) - timedelta(seconds=outbox.SENDING_STALE_SECONDS + 1)))
    outbox.reconcile(at_runtime)
    with at_runtime.db.session() as s:
        assert s.get(Message, message_id).state == "sent"
        assert s.scalar(select(Outbox.done_at).where(Outbox.job == "send_sms", Outbox.target_id == message_id))
    assert send(message_id) == "nothing to send: sent" and len(fake_at.messages) == 1
    assert not at_runtime.redis.hlen(outbox.UNRECORDED_KEY)


def test_a_job_held_by_a_killed_worker_is_enqueued_again(at_runtime):
    message_id = queue_sms(at_runtime)
    job = hold(at_runtime, message_id, dead_worker())
    assert outbox.reconcile(at_runtime) == 1
    assert Job.fetch(job.id, connection=at_runtime.redis).get_status() == JobStatus.QUEUED

    hold(at_runtime, message_id, outbox.worker_name())  # this very process: alive
    assert outbox.reconcile(at_runtime) == 0
    hold(at_runtime, message_id, f"another-host:{_dead_pid()}:abc")  # elsewhere: RQ's heartbeat decides
    assert outbox.reconcile(at_runtime) == 0


def test_worker_host_names_the_host_a_reconciler_can_see_the_processes_of(at_runtime, monkeypatch):
    """Two hosts (containers) must not judge each other's pids: WORKER_HOST names each."""
    monkeypatch.setattr(at_runtime, "settings", replace(at_runtime.settings, worker_host="host-b"))
    assert outbox.worker_name(at_runtime).startswith("host-b:")
    message_id = queue_sms(at_runtime)
    hold(at_runtime, message_id, dead_worker())  # the machine's own name: another host for host-b
    assert outbox.reconcile(at_runtime) == 0
    hold(at_runtime, message_id, f"host-b:{_dead_pid()}:abc")
    assert outbox.reconcile(at_runtime) == 1


def test_a_started_job_outlives_its_silent_worker_by_worker_heartbeat_seconds(runtime, monkeypatch):
    """The started registry's deadline, after which RQ's cleanup on any host retries the job."""
    from workers import worker as worker_module
    worker = worker_module.GatewayWorker([runtime.queue], runtime)
    job = SimpleNamespace(timeout=60)
    assert worker.get_heartbeat_ttl(job) == 120  # RQ's own for a 60-s job: the default changes nothing
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, worker_heartbeat_seconds=8))
    assert worker.get_heartbeat_ttl(job) == 8
    assert "WORKER_HEARTBEAT_SECONDS" in " ".join(Settings.from_env({"WORKER_HEARTBEAT_SECONDS": "0"}).problems())
    production = Settings(env="production", worker_heartbeat_seconds=60)
    assert any("WORKER_HEARTBEAT_SECONDS" in p for p in production.problems())


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_enqueued_again(runtime, monkeypatch):
    """Killed between taking the job from the queue and marking it started: the job still says
    `queued` but sits in RQ's intermediate list, where RQ would leave it a minute and then fail it."""
    with runtime.db.session() as session:
        outbox.add(session, "route_report", 9)
    assert outbox.reconcile(runtime) == 1
    queue, r = runtime.queue, runtime.redis
    assert r.lmove(queue.key, queue.intermediate_queue_key) == b"route_report-9"  # taken; then SIGKILL
    assert outbox.reconcile(runtime) == 0  # first sighting: a live worker may be about to start it
    monkeypatch.setattr(outbox, "TAKEN_AND_DROPPED_SECONDS", 0.0)
    assert outbox.reconcile(runtime) == 1  # still there on the next pass: enqueued again
    assert queue.job_ids == ["route_report-9"] and queue.intermediate_queue.get_job_ids() == []
    assert not r.exists(queue.intermediate_queue.get_first_seen_key("route_report-9"))
    assert outbox.reconcile(runtime) == 0  # queued for real now


def test_a_job_held_by_a_killed_worker_not_yet_reaped_is_enqueued_again(at_runtime):
    """Killed, but its parent has not waited for it yet: the pid still answers `kill -0`."""
    message_id = queue_sms(at_runtime)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_until(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1].startswith("Z"), timeout=10)
        hold(at_runtime, message_id, f"{outbox.worker_name().split(':')[0]}:{zombie.pid}:abc")
        assert outbox.reconcile(at_runtime) == 1
    finally:
        zombie.wait()


def test_reconciler_looks_at_a_deadline_redis_lost_once_it_is_due(runtime):
    """Open deadlines hours away are not looked up on every pass; once due, a lost one runs."""
    later = datetime.now(timezone.utc) + timedelta(minutes=30)
    with runtime.db.session() as session:
        outbox.add(session, "check_ack", 7, later)  # committed; then Redis lost its scheduled job
        outbox.add(session, "route_report", 8)  # due now, also lost
    assert outbox.reconcile(runtime) == 1 and runtime.queue.job_ids == ["route_report-8"]
    with runtime.db.session() as session:
        session.execute(update(Outbox).where(Outbox.job == "check_ack").values(not_before=later - timedelta(hours=1)))
    assert outbox.reconcile(runtime) == 1  # the deadline has passed: enqueued to run now
    assert runtime.queue.job_ids == ["route_report-8", "check_ack-7"]
    assert outbox.reconcile(runtime) == 0  # both live in Redis now


def test_a_worker_that_quits_without_being_asked_starts_again(monkeypatch):
    """RQ's worker quits when Redis is away at the wrong moment; `python -m workers` starts it
    again until a signal asks it to stop."""
    from workers import __main__ as entry
    started = []

    class Worker:
        def __init__(self, queues, rt):
            self.stop_requested = False
            started.append(self)
            if len(started) == 2:  # RQ names itself to Redis as it is made: still away
                raise redis.ConnectionError("Redis still restarting")

        def reconcile(self):
            pass

        def work(self, **options):
            if len(started) == 1:
                raise redis.ConnectionError("Redis restarting")  # from RQ's teardown
            if len(started) == 3:
                return True  # RQ's loop broke on an error it did not handle
            self.stop_requested = True  # SIGTERM

    monkeypatch.setattr(entry, "GatewayWorker", Worker)
    monkeypatch.setattr(entry, "runtime", lambda: SimpleNamespace(queue=None, settings=Settings()))
    monkeypatch.setattr(entry.logs, "configure", lambda **kwargs: None)
    monkeypatch.setattr(entry.signal, "signal", lambda *args: None)  # pytest's own handlers stay
    monkeypatch.setattr(entry.time, "sleep", lambda seconds: None)
    entry.main([])
    assert len(started) == 4 and started[-1].stop_requested
    started.clear()
    entry.main(["--burst"])  # a burst run ends when its queue is empty, however it ended
    assert len(started) == 1


def test_backlog_lists_what_is_owed(runner, runtime):
    assert runner.invoke(args=["backlog"]).exit_code == 0
    with runtime.db.session() as session:  # committed, then the process died before handing it to RQ
        outbox.add(session, "route_report", 42)
        outbox.add(session, "check_ack", 43, datetime.now(timezone.utc) + timedelta(hours=1))  # not owed yet
        session.flush()
        session.execute(update(Outbox).values(created_at=datetime.now(timezone.utc) - timedelta(minutes=5)))
    result = runner.invoke(args=["backlog"])
    assert result.exit_code == 1
    assert "route_report\t42\tattempts=1" in result.output and "not in Redis" in result.output
    assert "check_ack" not in result.output


def test_a_deadline_beyond_the_horizon_waits_in_the_outbox_and_is_scheduled_in_time(runtime):
    """Redis holds the next minute of scheduled work, not every open deadline: one further
    ahead is only its row until the reconciler finds it within reach, and then RQ's scheduler
    has it for its exact time."""
    with runtime.db.session() as session:
        batch = outbox.Batch(runtime, session)
        batch.add("check_ack", 7, datetime.now(timezone.utc) + timedelta(minutes=30))
    batch.enqueue()
    registry = runtime.queue.scheduled_job_registry
    assert registry.get_job_ids() == [] and outbox.reconcile(runtime) == 0  # not within reach yet
    soon = outbox.horizon(runtime) - timedelta(seconds=1)
    with runtime.db.session() as session:
        row = session.scalar(select(Outbox))
        assert (row.enqueued_at, row.attempts) == (None, 0)  # never handed over
        row.not_before = soon
    assert outbox.reconcile(runtime) == 1
    assert registry.get_job_ids() == ["check_ack-7"]
    assert registry.get_scheduled_time("check_ack-7") == soon.replace(microsecond=0)  # RQ keeps whole seconds
    with runtime.db.session() as session:
        row = session.scalar(select(Outbox))
        assert row.enqueued_at is not None and row.attempts == 1
    assert outbox.reconcile(runtime) == 0  # live in RQ now


@pytest.mark.slow
def test_running_worker_reconciles_what_redis_lost(client, runtime, fake_at, start_worker, redis_url, monkeypatch):
    """No restart needed: the worker's own maintenance loop enqueues the job the web could not."""
    roster.add(runtime, "polres_oki", "Piket", "+6281277776666")
    start_worker({"TIME_SCALE": "0.1"})  # reconciles every 3 s
    wait_until(lambda: redis.Redis.from_url(redis_url).keys("rq:worker:*"), timeout=15)

    def unreachable(*args, **kwargs):
        raise redis.ConnectionError("Redis unreachable from the web tier")

    monkeypatch.setattr(runtime.queue, "enqueue", unreachable)
    screens = Phone(flask_transport(client), number="+6281298765432").run(["1", "1", "1", "98", "10", "2", "2", "1"])
    assert "Kode: " in screens[-1]  # the report is committed and the caller has its code
    with runtime.db.session() as session:
        assert session.scalar(select(Outbox.enqueued_at).where(Outbox.job == "route_report")) is None
    assert fake_at.wait_for(1, timeout=30)[0]["to"] == "+6281277776666"


def test_a_busy_worker_sends_its_own_heartbeat_at_most_once_a_second(runtime, monkeypatch):
    """RQ beats three times per job; the worker key lives a minute or more, so one a second
    keeps it as alive. A longer TTL than the last, and a beat inside a pipeline, always go."""
    from workers import worker as worker_module
    worker = worker_module.GatewayWorker([runtime.queue], runtime)
    r = runtime.redis

    def expires() -> int:
        return r.info("commandstats").get("cmdstat_expire", {}).get("calls", 0)

    before = expires()
    for _ in range(5):
        worker.heartbeat()
    assert expires() - before == 1 and r.ttl(worker.key) > 60
    worker.heartbeat(worker.worker_ttl + 600)  # a job's longer TTL is not held back
    assert expires() - before == 2 and r.ttl(worker.key) > 600
    with r.pipeline() as pipe:
        worker.heartbeat(pipeline=pipe)
        pipe.execute()
    assert expires() - before == 3
    monkeypatch.setattr(worker_module, "HEARTBEAT_EVERY_SECONDS", 0.0)
    worker.heartbeat()
    assert expires() - before == 4


def test_the_worker_overrides_are_written_for_the_installed_rq():
    """GatewayWorker replaces some of RQ's bookkeeping methods; they mirror one RQ version. A new
    RQ must be read against them first: this fails until the version and the methods agree."""
    import inspect

    import rq
    from rq import SimpleWorker

    from workers.worker import GatewayWorker

    assert rq.__version__ == GatewayWorker.RQ_VERSION
    requirement = next(line for line in (Path(__file__).parent.parent / "requirements.txt").read_text().splitlines()
                       if line.startswith("rq=="))
    assert requirement == f"rq=={GatewayWorker.RQ_VERSION}"
    for name in GatewayWorker.OVERRIDDEN:
        ours, theirs = getattr(GatewayWorker, name), getattr(SimpleWorker, name)
        shape = lambda f: [(p.name, p.default) for p in inspect.signature(f).parameters.values()]  # noqa: E731
        assert ours is not theirs and shape(ours) == shape(theirs), name
