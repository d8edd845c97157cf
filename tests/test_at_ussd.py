"""The Africa's Talking USSD adapter: real payloads, the token check, and hostile input."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.channels import africastalking as at

PAYLOADS = yaml.safe_load((Path(__file__).parent / "payloads" / "at_ussd.yaml").read_text())
FORM = "application/x-www-form-urlencoded; charset=UTF-8"


@pytest.mark.parametrize("case", PAYLOADS, ids=[c["name"] for c in PAYLOADS])
def test_adapter_parses_real_payloads(case):
    form = dict(parse_qsl(case["body"], keep_blank_values=True))
    expect = case["expect"]
    if "status" in expect:
        with pytest.raises(at.BadCallback, match=expect["text"]):
            at.parse_ussd(form)
        return
    hop = at.parse_ussd(form)
    assert (hop.session_id, hop.phone, list(hop.inputs)) == (expect["session_id"], expect["phone"], expect["inputs"])


@pytest.mark.parametrize("case", PAYLOADS, ids=[c["name"] for c in PAYLOADS])
def test_webhook_answers_real_payloads(case, client):
    response = client.post("/at/ussd", data=case["body"], content_type=FORM)
    body = response.get_data(as_text=True)
    if "status" in case["expect"]:
        assert (response.status_code, body) == (case["expect"]["status"], case["expect"]["text"])
    else:
        assert response.status_code == 200 and response.mimetype == "text/plain"
        assert body.startswith("CON ") and len(body) <= 182


@pytest.fixture
def token_app(settings_overrides):
    from gateway import create_app

    app = create_app({**settings_overrides, "webhook_token": "s3cret-token-value"})
    yield app
    app.extensions["gateway"].runtime.db.dispose()


@pytest.mark.parametrize("query, status", [("", 403), ("?token=wrong", 403), ("?token=s3cret-token-valu", 403),
                                           ("?token=s3cret-token-value", 200)])
def test_webhook_token(token_app, query, status):
    body = "phoneNumber=%2B6281234567890&serviceCode=%2A123%23&text=&sessionId=ATUid_t&networkCode=51010"
    assert token_app.test_client().post(f"/at/ussd{query}", data=body, content_type=FORM).status_code == status


def test_no_token_needed_when_none_is_set(client):
    body = "phoneNumber=%2B6281234567890&serviceCode=%2A123%23&text=&sessionId=ATUid_t&networkCode=51010"
    assert client.post("/at/ussd?token=anything", data=body, content_type=FORM).status_code == 200


def _valid_answer(response) -> bool:
    body = response.get_data(as_text=True)
    if response.status_code == 400:
        return True
    return response.status_code == 200 and body[:4] in ("CON ", "END ") and len(body) <= 182


HOSTILE_TEXTS = {
    "10 kB of digits": "1" * 10_000,
    "star storm": "*" * 5_000,
    "stars between choices": "1****1",
    "non-digits": "abc*def",
    "emoji": "1*\U0001F600*\u202e2",
    "sql": "1'; DROP TABLE reports;--*1",
    "html": "<script>alert(1)</script>*1",
    "null byte": "1\x00*2",
    "huge number": "9" * 400,
    "negative": "-1*-2",
    "unicode digits": "\u0661*\u0662",
    "newlines": "1\n2*3\r\n",
}


@pytest.mark.parametrize("text", HOSTILE_TEXTS.values(), ids=HOSTILE_TEXTS.keys())
def test_hostile_text_gets_a_valid_screen(client, text):
    form = {"sessionId": "ATUid_hostile", "serviceCode": "*123#", "phoneNumber": "+6281234567890", "text": text}
    response = client.post("/at/ussd", data=form)
    assert _valid_answer(response), response.get_data(as_text=True)[:200]
    assert response.status_code == 200


@pytest.mark.parametrize("phone", ["", "abc", "+999", "0", "+62 812", "%2B62", "+" + "1" * 40, "\U0001F4DE"])
def test_invalid_phone_numbers_still_get_a_menu(client, phone):
    form = {"sessionId": "ATUid_phone", "serviceCode": "*123#", "phoneNumber": phone, "text": ""}
    response = client.post("/at/ussd", data=form)
    assert response.status_code == 200 and response.get_data(as_text=True).startswith("CON ")


@pytest.mark.parametrize("form", [{}, {"text": "1"}, {"sessionId": ""}, {"sessionId": "x" * 500, "phoneNumber": "1"}],
                         ids=["empty", "text only", "blank session", "long session"])
def test_missing_or_bad_fields_get_400(client, form):
    response = client.post("/at/ussd", data=form)
    assert response.status_code == 400


def test_unknown_session_id_with_history_is_replayed(client):
    form = {"sessionId": "ATUid_never_seen", "phoneNumber": "+6281234567890", "text": "1*2"}
    body = client.post("/at/ussd", data=form).get_data(as_text=True)
    assert body.startswith("CON ") and "Siapa korbannya?" in body


def test_oversized_body_gets_400(client):
    response = client.post("/at/ussd", data={"sessionId": "ATUid_big", "phoneNumber": "+62812", "text": "1" * 70_000})
    assert response.status_code == 400


def test_wrong_method_and_content_type(client):
    assert client.get("/at/ussd").status_code == 405
    response = client.post("/at/ussd", data='{"sessionId": "x"}', content_type="application/json")
    assert response.status_code == 400


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(session=st.text(max_size=40), phone=st.text(max_size=30), text=st.text(max_size=300))
def test_fuzzed_callbacks_never_fail(client, session, phone, text):
    response = client.post("/at/ussd", data={"sessionId": session, "phoneNumber": phone, "text": text})
    assert _valid_answer(response), (response.status_code, response.get_data(as_text=True)[:100])
