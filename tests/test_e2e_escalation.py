"""Escalation end to end: a real RQ worker with its scheduler, time compressed with TIME_SCALE
(an urgent report's 15-minute deadline becomes 4.5 s), the SDK sending to the local fake."""
from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone

import pytest
from conftest import wait_until
from phone import Phone, flask_transport
from sqlalchemy import func, select

from gateway.cases import roster
from gateway.store.models import Assignment, AuditEvent, Report

pytestmark = pytest.mark.slow

REPORTER, OKI, POLDA = "+6281298765432", "+6281277776666", "+6281277770000"
# job fraud, woman, OKI (on the second page of the list), in danger, contact ok, send
URGENT_REPORT = ["1", "1", "1", "98", "10", "1", "1", "1"]
_ids = itertools.count(1)


@pytest.fixture
def desks(runtime):
    roster.add(runtime, "polres_oki", "Piket PPA OKI", OKI)
    roster.add(runtime, "polda_ppa_ppo", "Piket Polda", POLDA)


@pytest.fixture
def worker(start_worker, desks):
    return start_worker({"TIME_SCALE": "0.005"})


def dial(client) -> str:
    return Phone(flask_transport(client), number=REPORTER).run(URGENT_REPORT)[-1].split("Kode: ")[1][:6]


def to(fake_at, number):
    return [m["message"] for m in fake_at.messages if m["to"] == number]


def count(runtime, action: str) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def terima(client, ref: str) -> None:
    client.post("/at/sms", data={"from": OKI, "id": f"ATSMS_E2E_ESC_{next(_ids)}", "text": f"TERIMA {ref}"})


def test_silence_escalates_exactly_once(client, runtime, fake_at, worker):
    ref = dial(client)
    wait_until(lambda: to(fake_at, POLDA), timeout=30)
    wait_until(lambda: count(runtime, "unanswered"), timeout=30)  # Polda's own deadline passed too
    assert count(runtime, "escalated") == 1
    assert len(to(fake_at, OKI)) == 1 and len(to(fake_at, POLDA)) == 1
    escalation = to(fake_at, POLDA)[0]
    assert escalation.startswith("ESKALASI: belum dijawab Polres OKI dlm ") and f"TPPO {ref}" in escalation


def test_acknowledgement_in_time_means_no_escalation(client, runtime, fake_at, worker):
    ref = dial(client)
    wait_until(lambda: to(fake_at, OKI), timeout=20)
    terima(client, ref)
    wait_until(lambda: to(fake_at, REPORTER), timeout=20)  # the reporter's neutral feedback
    with runtime.db.session() as session:
        deadline = session.scalar(select(Assignment.deadline_at))
    deadline = deadline if deadline.tzinfo else deadline.replace(tzinfo=timezone.utc)
    time.sleep(max(0.0, (deadline - datetime.now(timezone.utc)).total_seconds()) + 3)  # the check has run
    assert to(fake_at, POLDA) == [] and count(runtime, "escalated") == 0
    with runtime.db.session() as session:
        assert session.scalar(select(Assignment.state)) == "acknowledged"


def test_acknowledgement_at_the_deadline_has_one_outcome(client, runtime, fake_at, worker):
    ref = dial(client)
    wait_until(lambda: to(fake_at, OKI), timeout=20)
    with runtime.db.session() as session:
        deadline = session.scalar(select(Assignment.deadline_at))
    deadline = deadline if deadline.tzinfo else deadline.replace(tzinfo=timezone.utc)
    time.sleep(max(0.0, (deadline - datetime.now(timezone.utc)).total_seconds()))
    terima(client, ref)  # arrives as the scheduler hands the deadline check to the worker
    wait_until(lambda: to(fake_at, REPORTER), timeout=20)
    time.sleep(2)
    escalations = count(runtime, "escalated")
    assert escalations in (0, 1) and len(to(fake_at, POLDA)) == escalations
    with runtime.db.session() as session:
        assert session.scalar(select(Report.status)) == "acknowledged"
    assert len(to(fake_at, REPORTER)) == 1
