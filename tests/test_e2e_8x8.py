"""The second adapter end to end: an SMS report arrives on 8x8's webhook, a real RQ worker
configured only by environment (SMS_PROVIDER=8x8) answers the reporter and alerts the agency
through a local fake of 8x8's API, and 8x8's delivery receipt for an alert updates it.
flows/ and workers/ know nothing of 8x8."""
from __future__ import annotations

import pytest
from conftest import wait_until
from fake_8x8 import Fake8x8
from sqlalchemy import select

from gateway.cases import roster
from gateway.store.models import Message

pytestmark = pytest.mark.slow

RESIDENT = "+6281298765432"
FIRST_DESK, SECOND_DESK = "+6281277776666", "+6281277775555"


@pytest.fixture
def fake_8x8():
    with Fake8x8() as fake:
        yield fake


def inbound(umid: str, source: str, text: str) -> dict:
    return {"namespace": "SMS", "eventType": "inbound_message_received", "description": "SMS inbound message",
            "payload": {"umid": umid, "subAccountId": "tppo-sumsel", "timestamp": "2026-11-28T10:15:00.00Z",
                        "source": source, "destination": "+6281100001111", "body": text, "encoding": "GSM7",
                        "smsCount": 1}}


def receipt(umid: str, state: str, detail: str) -> dict:
    return {"namespace": "SMS", "eventType": "outbound_message_status_changed",
            "payload": {"umid": umid, "subAccountId": "tppo-sumsel", "destination": FIRST_DESK,
                        "status": {"state": state, "detail": detail, "timestamp": "2026-11-28T10:16:00.00Z"}}}


def to(fake, number: str) -> list[dict]:
    return [m for m in fake.messages if m["to"] == number]


def test_sms_report_through_8x8_reaches_the_agency(client, runtime, fake_8x8, start_worker):
    roster.add(runtime, "polres_oki", "Piket PPA 1", FIRST_DESK)
    roster.add(runtime, "polres_oki", "Piket PPA 2", SECOND_DESK)
    start_worker({"SMS_PROVIDER": "8x8", "SMS8X8_API_KEY": fake_8x8.api_key, "TIME_SCALE": "0.01",
                  "SMS8X8_SUBACCOUNT_ID": fake_8x8.subaccount_id, "SMS8X8_API_URL": fake_8x8.base_url})
    text = "LAPOR anak saya dibawa calo ke Malaysia lewat Kayuagung, paspor ditahan"
    assert client.post("/8x8/sms", json=inbound("8x8-e2e-0001", RESIDENT, text)).get_data(as_text=True) == "new"

    wait_until(lambda: to(fake_8x8, RESIDENT) and len(fake_8x8.messages) >= 3, timeout=20)
    [reply] = to(fake_8x8, RESIDENT)
    ref = reply["message"].split("Kode: ")[1][:6]
    alerts = [m for m in fake_8x8.messages if m["to"] in (FIRST_DESK, SECOND_DESK)]
    assert {a["to"] for a in alerts} == {FIRST_DESK, SECOND_DESK}
    opening = f"TPPO {ref}: TKI/PMI tanpa izin, korban anak (di bawah 18), OKI."
    assert all(a["message"].startswith(opening) for a in alerts)

    first = next(a for a in alerts if a["to"] == FIRST_DESK)
    delivered = client.post("/8x8/delivery", json=receipt(first["umid"], "delivered", "delivered_to_recipient"))
    assert delivered.get_data(as_text=True) == "delivered"
    with runtime.db.session() as session:
        message = session.scalar(select(Message).where(Message.provider_message_id == first["umid"]))
        assert (message.provider, message.state, message.purpose) == ("8x8", "delivered", "alert")
