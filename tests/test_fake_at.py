"""Tests for tests/fake_at.py, driven through the real africastalking SDK.

Why: the fake is only useful if the SDK (which the gateway uses unchanged)
reads its answers exactly as it reads Africa's Talking's.
"""

import re

import pytest
import requests
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService

try:  # tests/ is not a package today; keep working if it becomes one
    from fake_at import FakeAfricasTalking
except ImportError:  # pragma: no cover
    from tests.fake_at import FakeAfricasTalking

NUMBER = "+6281234567890"


@pytest.fixture
def fake():
    with FakeAfricasTalking() as server:
        yield server


def make_sms(fake, api_key=None):
    svc = SMSService("sandbox", api_key or fake.api_key)
    svc._baseUrl = fake.base_url  # the SDK has no public host setting
    return svc


def test_send_through_sdk(fake):
    result = make_sms(fake).send("hello", [NUMBER], sender_id="ACME")

    assert isinstance(result, dict), result  # i.e. Content-Type was exactly JSON
    (recipient,) = result["SMSMessageData"]["Recipients"]
    assert recipient["number"] == NUMBER
    assert recipient["statusCode"] == 101
    assert re.fullmatch(r"ATXid_[0-9a-f]{32}", recipient["messageId"])
    assert result["SMSMessageData"]["Message"].startswith("Sent to 1/1")

    assert fake.messages == [{
        "to": NUMBER,
        "message": "hello",
        "from": "ACME",
        "username": "sandbox",
        "message_id": recipient["messageId"],
        "status_code": 101,
    }]
    assert fake.requests_seen == 1


def test_enqueue_reports_queued(fake):
    result = make_sms(fake).send("hi", [NUMBER], enqueue=True)
    assert result["SMSMessageData"]["Recipients"][0]["statusCode"] == 102
    assert fake.messages[0]["status_code"] == 102


def test_wrong_api_key_raises(fake):
    with pytest.raises(AfricasTalkingException, match="authentication is invalid"):
        make_sms(fake, api_key="wrong").send("hello", [NUMBER])
    assert fake.messages == []
    assert fake.requests_seen == 1


def test_fail_next_then_success(fake):
    fake.fail_next(2, 500)
    sms = make_sms(fake)
    for _ in range(2):
        with pytest.raises(AfricasTalkingException):
            sms.send("hello", [NUMBER])
    assert fake.messages == []

    sms.send("hello", [NUMBER])
    assert len(fake.messages) == 1
    assert fake.requests_seen == 3


def test_recipient_status_blacklisted(fake):
    fake.recipient_status(NUMBER, 406)
    result = make_sms(fake).send("hello", [NUMBER])

    assert result["SMSMessageData"]["Recipients"] == [{
        "cost": "0",
        "messageId": "None",
        "number": NUMBER,
        "status": "UserInBlacklist",
        "statusCode": 406,
    }]
    assert fake.messages == []
    assert [r["status_code"] for r in fake.rejected] == [406]


def test_hang_makes_client_time_out(fake):
    fake.hang_next(1, 2)
    with pytest.raises(requests.exceptions.Timeout):
        make_sms(fake).send("hello", [NUMBER], timeout=(1, 0.5))
    # The fake still "sends" it once the hang is over, like a slow real AT.
    assert len(fake.wait_for(1, timeout=5)) == 1


def test_multiple_recipients(fake):
    numbers = ["+6281111111111", "+6282222222222", "+6283333333333"]
    fake.recipient_status(numbers[1], 403)
    result = make_sms(fake).send("bulk", numbers)

    codes = [r["statusCode"] for r in result["SMSMessageData"]["Recipients"]]
    assert codes == [101, 403, 101]
    assert [m["to"] for m in fake.messages] == [numbers[0], numbers[2]]
    assert len({m["message_id"] for m in fake.messages}) == 2
    assert fake.requests_seen == 1


def test_fail_ratio_is_seeded_and_reset_clears(fake):
    fake.fail_ratio(0.5, seed=1)
    sms = make_sms(fake)
    outcomes = []
    for _ in range(20):
        try:
            sms.send("x", [NUMBER])
            outcomes.append(True)
        except AfricasTalkingException:
            outcomes.append(False)
    assert 0 < outcomes.count(True) < 20
    assert len(fake.messages) == outcomes.count(True)

    fake.reset()
    sms.send("x", [NUMBER])
    assert len(fake.messages) == 1 and fake.requests_seen == 1


def test_plain_http_errors(fake):
    headers = {"apiKey": fake.api_key}
    with requests.get(fake.base_url + "/nope", timeout=5) as r:
        assert r.status_code == 404
    with requests.post(fake.base_url + "/messaging", headers=headers,
                       data={"username": "sandbox", "to": NUMBER}, timeout=5) as r:
        assert r.status_code == 400
        assert r.headers["Content-Type"].startswith("text/plain")
    assert fake.requests_seen == 1
