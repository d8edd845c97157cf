"""The RQ worker class: SimpleWorker, plus the outbox reconciler and the daily retention
purge as maintenance tasks.

SimpleWorker runs jobs in its own process, so the runtime (config, database pool, SDK session)
is built once instead of per fork. The reconciler runs at start and then every
outbox.reconcile_interval from the worker's own loop, not as a job in Redis: a Redis restart
that empties the queue cannot take the reconciler with it. A lock in Redis lets one worker of
many do it each time."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.utils import now
from rq.worker import WorkerStatus

from gateway.cases import retention
from gateway.messaging import outbox

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

RECONCILE_LOCK = "outbox:reconcile:lock"
PURGE_INTERVAL_SECONDS = 86400
PURGE_LOCK = "retention:purge:lock"
HEARTBEAT_EVERY_SECONDS = 1.0  # at most this often a heartbeat sent on its own (not in a pipeline)
SUSPENSION_CHECK_EVERY_SECONDS = 1.0  # `rq suspend` is seen within this long, not before every job


class GatewayWorker(SimpleWorker):
    """RQ's SimpleWorker with the outbox's reconciler and retention as maintenance, and some of
    RQ's per-job bookkeeping trimmed (suspension checks, repeated state writes, dependents). Those
    overrides follow the RQ pinned in requirements.txt; a test names that version and the
    methods, so raising it means reading them again against the new RQ."""

    RQ_VERSION = "2.12.0"
    OVERRIDDEN = ("check_for_suspension", "set_state", "handle_execution_ended", "handle_job_success")

    def __init__(self, queues, runtime: Runtime, **kwargs):
        self.runtime = runtime
        self.reconcile_every = outbox.reconcile_interval(runtime)
        # RQ checks for maintenance between jobs and whenever its blocking dequeue times out,
        # which is worker_ttl - 15 seconds.
        super().__init__(queues, connection=runtime.redis, name=outbox.worker_name(runtime),
                         worker_ttl=self.reconcile_every + 15, maintenance_interval=self.reconcile_every, **kwargs)

    stop_requested = False  # by a signal (SIGTERM, Ctrl-C), as opposed to quitting on an error

    def request_stop(self, signum, frame):
        self.stop_requested = True
        super().request_stop(signum, frame)

    _last_beat = (float("-inf"), 0)  # (monotonic time, TTL) of the last heartbeat sent on its own

    def heartbeat(self, timeout=None, pipeline=None):
        """RQ sends one before and after every dequeue and one after every job: three per job,
        two round trips each. The worker key's TTL is worker_ttl + 60 s or more, so in a busy
        queue one a second keeps it as alive. One asking for a longer TTL than the last, or
        sent in a pipeline with the job's own bookkeeping, always goes."""
        if pipeline is None:
            ttl, at = timeout or self.worker_ttl + 60, time.monotonic()
            if at - self._last_beat[0] < HEARTBEAT_EVERY_SECONDS and ttl <= self._last_beat[1]:
                return
            self._last_beat = (at, ttl)
        super().heartbeat(timeout, pipeline)

    _suspension_checked = float("-inf")

    def check_for_suspension(self, burst: bool):
        """RQ asks Redis before every job; once a second is as good for an operator's pause."""
        at = time.monotonic()
        if at - self._suspension_checked >= SUSPENSION_CHECK_EVERY_SECONDS:
            self._suspension_checked = at
            super().check_for_suspension(burst)

    def set_state(self, state, pipeline=None):
        """RQ marks the worker idle after each job and again before the next dequeue: the second,
        unchanged, is not sent. Only this worker writes its state."""
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        """RQ's job heartbeat here keeps the job `started` while callbacks run: none of our jobs
        has one, and the job leaves the started registry in the same breath."""
        job.ended_at = now()

    def handle_job_success(self, job, queue, started_job_registry):
        """RQ's own, less the WATCH on the job's dependents and their look-up: no job of ours has
        dependents (outbox.enqueue never passes `depends_on`), so two round trips a job bought
        nothing. The bookkeeping is RQ's, in one MULTI, with the worker's return to idle."""
        if job.repeats_left:
            return super().handle_job_success(job, queue, started_job_registry)
        with self.connection.pipeline() as pipeline:
            self.increment_successful_job_count(pipeline=pipeline)
            self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
            result_ttl = job.get_result_ttl(self.default_result_ttl)
            if result_ttl != 0:
                job._handle_success(result_ttl, pipeline=pipeline, worker_name=self.name,
                                    execution_id=self.execution.id if self.execution else None,
                                    execution_started_at=self.execution.created_at if self.execution else None,
                                    execution_ended_at=job.ended_at)
            job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipeline)
            self.set_state(WorkerStatus.IDLE, pipeline)  # what RQ sends on its own right after
            pipeline.execute()
        self.log.info("Successfully completed job %s in %ss on worker %s", job.id, job.ended_at - job.started_at,
                      self.name)

    def get_heartbeat_ttl(self, job) -> int:
        """How long a started job stays `started` without a word from this worker: after that,
        RQ's registry cleanup on any host gives it to another worker. RQ's own figure is the
        job's timeout plus 60 s; WORKER_HEARTBEAT_SECONDS lets a test take a killed host's
        jobs over without waiting that long."""
        return max(1, round(self.runtime.settings.worker_heartbeat_seconds))

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        self.reconcile()
        self.purge()

    def purge(self) -> None:
        """Once a day, by whichever worker takes the lock."""
        try:
            if self.connection.set(PURGE_LOCK, self.name, nx=True, ex=PURGE_INTERVAL_SECONDS):
                retention.purge(self.runtime)
        except RedisError as exc:
            log.warning("retention purge skipped, Redis unavailable: %s", type(exc).__name__)
        except Exception:  # noqa: BLE001 - the database may be down; the lock expires, try tomorrow
            log.exception("retention purge failed")

    def reconcile(self) -> None:
        """Never lets an error escape: RQ's loop would stop the worker on it."""
        try:
            if self.connection.set(RECONCILE_LOCK, self.name, nx=True, ex=self.reconcile_every):
                outbox.reconcile(self.runtime)
        except RedisError as exc:
            log.warning("reconciler skipped, Redis unavailable: %s", type(exc).__name__)
        except Exception:  # noqa: BLE001 - the database may be down; try again next time
            log.exception("reconciler failed; will try again in %ss", self.reconcile_every)
