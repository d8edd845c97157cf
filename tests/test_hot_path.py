"""The request path's shortcuts keep their guarantees: a right token is never locked out, a
new session's two limits still refuse in one round trip (a final hop's report counted in it), a
menu hop makes one Redis call, a retried final hop still gets the code already given, and SMS
go out over one kept session."""
from __future__ import annotations

import requests
from phone import Phone, flask_transport

from gateway import create_app
from gateway.cases.reports import NewReport, ReportDesk
from gateway.channels.africastalking import AfricasTalkingProvider
from gateway.console import metrics

TOKEN = "s3cret-token-value"
BODY = {"sessionId": "ATUid_hot", "phoneNumber": "+6281298765432", "serviceCode": "*123#", "text": ""}
ANSWERS = {"category": "job_fraud", "victim": "woman", "region": "16.02", "urgent": False, "contact": True}


def test_a_right_token_keeps_answering_while_wrong_tokens_flood_its_address(settings_overrides):
    """Behind a proxy every caller shares one address: the flood must not silence the aggregator."""
    client = create_app({**settings_overrides, "webhook_token": TOKEN}).test_client()
    here = {"REMOTE_ADDR": "10.1.1.1"}
    statuses = []
    for n in range(40):
        statuses.append(client.post("/at/ussd?token=guess", data=BODY, environ_base=here).status_code)
        caller = {**BODY, "sessionId": f"ATUid_flood{n}", "phoneNumber": f"+62812987{n:05d}"}
        right = client.post(f"/at/ussd?token={TOKEN}", data=caller, environ_base=here)
        assert right.status_code == 200 and right.get_data(as_text=True).startswith("CON ")
    assert statuses[:30] == [403] * 30 and set(statuses[30:]) == {429}


def test_a_new_session_is_refused_when_the_daily_reports_are_used_up(settings_overrides):
    client = create_app({**settings_overrides, "limit_reports_per_day": 1}).test_client()
    first = Phone(flask_transport(client), number="+6281298765433")
    assert "Kode: " in first.run(["1", "1", "1", "98", "10", "2", "1", "1"])[-1]
    again = Phone(flask_transport(client), number="+6281298765433").dial()
    assert again.startswith("END ") and "Kode" not in again  # one report a day for this number: no new session


def test_a_menu_hop_makes_at_most_one_redis_call(app, client, settings_overrides, monkeypatch):
    """Between the dial and the hop that files (the daily count, the queue), an Africa's Talking
    hop is answered from its `text` and at most one round trip: its session's verdict on the
    limits, asked once by each process that sees the session (a first hop cannot be told from
    its text), then kept there as Redis keeps it."""
    monkeypatch.setattr(metrics, "FLUSH_SECONDS", 3600.0)  # the metrics' own write, once in a while
    other = create_app(settings_overrides).test_client()  # another server process
    phone = Phone(flask_transport(client), number="+6281298765434")
    assert phone.dial().startswith("CON ")
    calls = []
    for redis in (app.extensions["gateway"].runtime.redis, other.application.extensions["gateway"].runtime.redis):
        for name in ("execute_command", "pipeline"):
            real = getattr(redis, name)
            monkeypatch.setattr(redis, name,
                                lambda *a, _name=name, _real=real, **k: calls.append(_name) or _real(*a, **k))
    for n, key in enumerate(["1", "1", "1", "98", "10", "2", "1"]):  # up to the confirmation
        calls.clear()
        phone.post = flask_transport(other if n in (2, 3) else client)
        assert phone.press(key).startswith("CON ")
        assert calls == (["execute_command"] if n == 2 else []), (n, calls)
    calls.clear()
    assert "Kode: " in phone.press("1") and len(calls) > 1  # the hop that files does more


def test_a_final_hop_new_to_the_process_counts_its_report_with_the_verdict(settings_overrides, monkeypatch):
    """A final hop whose session this process has not seen asks Redis once for both limits: the
    session's verdict and the report's count; the daily limit still holds."""
    client = create_app({**settings_overrides, "limit_reports_per_day": 2}).test_client()
    limiter = client.application.extensions["gateway"].runtime.limiter
    hits = []
    monkeypatch.setattr(limiter, "hit", lambda *a: hits.append(a) or True)
    whole = "*".join(["1", "1", "1", "98", "10", "2", "1", "1"])
    screens = [client.post("/at/ussd", data={**BODY, "sessionId": f"ATUid_whole{n}", "text": whole})
               .get_data(as_text=True) for n in range(3)]
    assert ["Kode: " in s for s in screens] == [True, True, False] and hits == []


def test_a_kept_verdict_is_the_one_redis_gave(settings_overrides, monkeypatch):
    """A session refused at its start stays refused in the process that keeps its verdict; a
    verdict Redis could not give (let through) is not kept: the next hop asks again."""
    client = create_app({**settings_overrides, "limit_ussd_sessions_per_hour": 1}).test_client()
    assert Phone(flask_transport(client), number="+6281298765435").dial().startswith("CON ")
    refused = Phone(flask_transport(client), number="+6281298765435")
    assert refused.dial().startswith("END ")
    assert refused.press("2").startswith("END ") and refused.press("98").startswith("END ")
    service = client.application.extensions["gateway"].ussd
    asked = []
    monkeypatch.setattr(service.runtime.limiter, "session_verdict_and_report",
                        lambda *a: asked.append(a) or (None, None))
    down = Phone(flask_transport(client), number="+6281298765436")
    assert down.dial().startswith("CON ") and down.press("2").startswith("CON ")
    assert len(asked) == 2


def test_a_retried_final_hop_gets_the_code_already_given(app):
    desk = ReportDesk(app.extensions["gateway"].runtime)
    first = desk.submit(NewReport("at-ussd", "ATUid_retry", "+6281298765432", ANSWERS))
    assert desk.submit(NewReport("at-ussd", "ATUid_retry", "+6281298765432", ANSWERS)) == first
    assert desk.submit(NewReport("at-ussd", "ATUid_other", "+6281298765432", ANSWERS)) != first


def test_sms_go_out_through_one_kept_http_session(fake_at, monkeypatch):
    provider = AfricasTalkingProvider("sandbox", fake_at.api_key, api_url=fake_at.base_url)
    sessions = []
    real_post = requests.Session.post

    def post(self, *args, **kwargs):
        sessions.append(self)
        return real_post(self, *args, **kwargs)
    monkeypatch.setattr(requests.Session, "post", post)
    monkeypatch.setattr(requests, "post", lambda *a, **k: (_ for _ in ()).throw(AssertionError("new session")))
    assert [provider.send("+6281234567890", f"hi {n}").outcome for n in range(3)] == ["sent"] * 3
    assert len(sessions) == 3 and len(set(map(id, sessions))) == 1
