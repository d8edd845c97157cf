"""RQ's entry points, one line each into the domain, with the worker process's Runtime. They
take ids, never personal data (job arguments sit in Redis in clear). gateway.messaging.jobs
lists them with their back-off; the work and its idempotence live in the modules named here."""
from __future__ import annotations

from gateway.cases import community, dispatch
from gateway.intake.sms_desk import SmsDesk
from gateway.messaging import sending

from .runtime import runtime


def route_report(report_id: int) -> str:
    return dispatch.route_report(runtime(), report_id)


def check_ack(assignment_id: int) -> str:
    return dispatch.check_ack(runtime(), assignment_id)


def alert_next(message_id: int) -> str:
    return dispatch.alert_next(runtime(), message_id)


def send_sms(message_id: int) -> str:
    return sending.send_sms(runtime(), message_id)


def handle_sms(inbound_id: int) -> str:
    return SmsDesk(runtime()).handle(inbound_id)


def finish_report(report_id: int) -> str:
    return SmsDesk(runtime()).finish(report_id)


def send_broadcast(broadcast_id: int) -> str:
    return community.send_broadcast(runtime(), broadcast_id)
