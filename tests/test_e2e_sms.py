"""SMS end to end on real parts: the webhook, a real redis-server, a real RQ worker process
with its scheduler (waits compressed with TIME_SCALE), and the africastalking SDK sending to
the local fake, which can fail on command."""
from __future__ import annotations

import itertools
import time

import pytest
from conftest import wait_until
from sqlalchemy import select

from gateway.cases import roster
from gateway.store.models import AuditEvent, Message, Report

pytestmark = pytest.mark.slow

RESIDENT = "+6281298765432"
OKI_DESK = "+6281277776666"
_ids = itertools.count(1)


@pytest.fixture
def worker(start_worker):
    return start_worker({"TIME_SCALE": "0.01"})


def text(client, body: str, sender: str = RESIDENT) -> None:
    response = client.post("/at/sms", data={"from": sender, "to": "12345", "text": body,
                                            "id": f"ATSMS_E2E_{next(_ids):04d}"})
    assert response.status_code == 200


def to(fake, number: str) -> list[str]:
    return [m["message"] for m in fake.messages if m["to"] == number]


def settle(fake, seconds: float = 1.0) -> None:
    """Wait until the fake has seen nothing new for `seconds`: anything extra would show now."""
    seen = -1
    while seen != fake.requests_seen:
        seen = fake.requests_seen
        time.sleep(seconds)


def test_sms_report_reaches_the_right_agency(client, runtime, fake_at, worker):
    roster.add(runtime, "polres_oki", "Piket PPA", OKI_DESK)
    text(client, "LAPOR anak saya dibawa calo ke Malaysia lewat Kayuagung, paspor ditahan")
    wait_until(lambda: to(fake_at, OKI_DESK) and to(fake_at, RESIDENT), timeout=20)
    settle(fake_at)
    [reply], [alert] = to(fake_at, RESIDENT), to(fake_at, OKI_DESK)
    ref = reply.split("Kode: ")[1][:6]
    assert alert.startswith(f"TPPO {ref}: TKI/PMI tanpa izin, korban anak (di bawah 18), OKI.")
    assert RESIDENT not in alert
    assert len(fake_at.messages) == 2


def test_stop_silences_every_later_message(client, fake_at, worker):
    text(client, "STOP")
    wait_until(lambda: to(fake_at, RESIDENT), timeout=20)
    for body in ("TANDA", "INFO OKI", "halo"):
        text(client, body)
    settle(fake_at)
    assert to(fake_at, RESIDENT) == [
        "Anda tidak akan menerima pesan lagi dari layanan ini. Kirim MULAI untuk mengaktifkan kembali."]


def test_provider_failing_twice_still_delivers_exactly_one(client, runtime, fake_at, worker):
    fake_at.fail_next(2, 500)
    text(client, "TANDA")
    wait_until(lambda: to(fake_at, RESIDENT), timeout=30)
    settle(fake_at)
    assert len(to(fake_at, RESIDENT)) == 1 and fake_at.requests_seen == 3
    with runtime.db.session() as session:
        message = session.scalar(select(Message))
        assert (message.state, message.attempts) == ("sent", 3)


def test_blacklisted_recipient_is_final_and_recorded(client, runtime, fake_at, worker):
    roster.add(runtime, "polres_oki", "Piket PPA", OKI_DESK)
    fake_at.recipient_status(OKI_DESK, 406)
    text(client, "LAPOR penipuan kerja gaji besar di OKI")
    wait_until(lambda: fake_at.rejected and to(fake_at, RESIDENT), timeout=20)
    settle(fake_at)
    assert [r["status_code"] for r in fake_at.rejected] == [406]
    with runtime.db.session() as session:
        alert = session.scalar(select(Message).where(Message.purpose == "alert"))
        assert (alert.state, alert.status_code, alert.failure_reason, alert.attempts) == (
            "rejected", 406, "UserInBlacklist", 1)
        report_id = session.scalar(select(Report.id))
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.report_id == report_id)).all()
        assert "alert_rejected" in actions
