"""The job registry: every job the outbox can owe, the RQ entry point that runs it and its
back-off. Entry points are named by path, not imported: the domain never imports the worker
process, and a test checks that each path names a function of `workers.jobs`.

After the last retry a job stays in RQ's failed registry and its outbox row stays open, so
the reconciler offers it again at the next worker start."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobName(StrEnum):
    ROUTE_REPORT = "route_report"
    CHECK_ACK = "check_ack"
    ALERT_NEXT = "alert_next"
    SEND_SMS = "send_sms"
    HANDLE_SMS = "handle_sms"
    FINISH_REPORT = "finish_report"
    SEND_BROADCAST = "send_broadcast"


BACKOFF = (5, 15, 60, 180, 600)  # seconds before each retry
SEND_BACKOFF = BACKOFF + (1800,)  # an SMS keeps trying through a longer provider outage


@dataclass(frozen=True)
class JobSpec:
    entry_point: str
    backoff: tuple[int, ...] = BACKOFF


JOBS: dict[JobName, JobSpec] = {
    JobName.ROUTE_REPORT: JobSpec("workers.jobs.route_report"),
    JobName.CHECK_ACK: JobSpec("workers.jobs.check_ack"),
    JobName.ALERT_NEXT: JobSpec("workers.jobs.alert_next"),
    JobName.SEND_SMS: JobSpec("workers.jobs.send_sms", SEND_BACKOFF),
    JobName.HANDLE_SMS: JobSpec("workers.jobs.handle_sms"),
    JobName.FINISH_REPORT: JobSpec("workers.jobs.finish_report"),
    JobName.SEND_BROADCAST: JobSpec("workers.jobs.send_broadcast"),
}
