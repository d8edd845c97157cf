"""The USSD hop answered before Flask (gateway.web.fast_ussd) answers exactly as the Flask view:
same body, status and headers, request id, request log and metrics; everything it does not
answer reaches Flask with its body intact."""
from __future__ import annotations

import logging
from urllib.parse import urlencode

import pytest
from sqlalchemy.exc import OperationalError
from werkzeug.test import Client

from gateway import create_app
from gateway.cases import community
from gateway.web.fast_ussd import UssdFastPath

TOKEN = "s3cret-token-value"
HOPS = ["", "2", "2*98", "2*98*9", "2*98*9*99", "3*98*98", "5*1*98", "4*2", "1*1*1*98*10", "1*5*2", "7*98",
        "9*9*9", "abc", "*", "00", "2*0", "1*1*1*98*10*2*1", "*".join(["1"] * 60), "1%2A2", "é*☃",
        "1*1*1*98*10*2*1*1"]  # the last files a report: Flask's answer to the same session is its retry


@pytest.fixture
def token_app(settings_overrides):
    return create_app({**settings_overrides, "webhook_token": TOKEN})


def _flask_only(app) -> Client:
    assert isinstance(app.wsgi_app, UssdFastPath)
    return Client(app.wsgi_app.inner)


def _form(text: str, n: int = 0) -> dict:
    return {"sessionId": f"ATUid_fast{n}", "phoneNumber": f"+62812987{n:05d}", "serviceCode": "*123#",
            "networkCode": "51010", "text": text}


@pytest.mark.parametrize("n, text", list(enumerate(HOPS)))
def test_the_fast_path_answers_as_flask_does(token_app, n, text):
    fast, flask = token_app.test_client(), _flask_only(token_app)
    headers = {"X-Request-Id": "lb-1"}
    inner, handed = token_app.wsgi_app.inner, []
    token_app.wsgi_app.inner = lambda environ, start: handed.append(1) or inner(environ, start)
    a = fast.post(f"/at/ussd?token={TOKEN}", data=_form(text, n), headers=headers)
    token_app.wsgi_app.inner = inner
    assert not handed  # answered before Flask
    b = flask.post(f"/at/ussd?token={TOKEN}", data=_form(text, n), headers=headers)
    assert (a.status, a.get_data(), sorted(a.headers.items())) == (b.status, b.get_data(), sorted(b.headers.items()))


@pytest.mark.parametrize("query, body, content_type, extra", [
    ("token=wrong", _form(""), "application/x-www-form-urlencoded", {}),
    ("", _form(""), "application/x-www-form-urlencoded", {}),
    (f"token={TOKEN}", {"phoneNumber": "+6281298700000", "text": ""}, "application/x-www-form-urlencoded", {}),
    (f"token={TOKEN}", {"sessionId": "bad id!", "phoneNumber": "+6281298700000"}, "application/x-www-form-urlencoded",
     {}),
    (f"token={TOKEN}", _form(""), "text/plain", {}),
    (f"token={TOKEN}", _form(""), "application/x-www-form-urlencoded", {"Cookie": "tppo_console=x"}),
    (f"token={TOKEN}&token=other", _form("2"), "application/x-www-form-urlencoded", {}),
    (f"token=other&token={TOKEN}", _form("2"), "application/x-www-form-urlencoded", {}),
    (f"token={TOKEN}", {"sessionId": "x", "phoneNumber": "1", "text": "a" * 20000}, "application/x-www-form-urlencoded",
     {}),
])
def test_what_the_fast_path_leaves_to_flask_is_answered_as_before(token_app, query, body, content_type, extra):
    fast, flask = token_app.test_client(), _flask_only(token_app)
    data = urlencode(body)
    headers = {"Content-Type": content_type, "X-Request-Id": "lb-2", **extra}
    a = fast.post(f"/at/ussd?{query}", data=data, headers=headers)
    b = flask.post(f"/at/ussd?{query}", data=data, headers=headers)
    assert (a.status, a.get_data()) == (b.status, b.get_data())
    assert sorted(a.headers.items()) == sorted(b.headers.items())


def test_the_hop_that_files_is_answered_before_flask(token_app):
    client = token_app.test_client()
    inner, handed = token_app.wsgi_app.inner, []
    token_app.wsgi_app.inner = lambda environ, start: handed.append(1) or inner(environ, start)
    for n in range(8):
        answer = client.post(f"/at/ussd?token={TOKEN}", data=_form("*".join(["1", "1", "1", "2", "2", "1", "1"][:n])))
        assert answer.status_code == 200
    assert "Kode: " in answer.get_data(as_text=True) and not handed


def test_a_database_away_during_an_effect_ends_the_session_as_flask_does(token_app, monkeypatch, caplog):
    def away(*_args):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(community, "subscribe", away)
    fast, flask = token_app.test_client(), _flask_only(token_app)
    a = fast.post(f"/at/ussd?token={TOKEN}", data=_form("6*1*1", 7), headers={"X-Request-Id": "lb-4"})
    b = flask.post(f"/at/ussd?token={TOKEN}", data=_form("6*1*1", 7), headers={"X-Request-Id": "lb-4"})
    assert (a.status, a.get_data(), sorted(a.headers.items())) == (b.status, b.get_data(), sorted(b.headers.items()))
    assert a.get_data(as_text=True).startswith("END ")
    assert [r.getMessage() for r in caplog.records if "not stored" in r.getMessage()] == [
        "callback /at/ussd not stored: OperationalError"] * 2


def test_a_fast_hop_is_logged_and_counted(token_app, caplog):
    caplog.set_level(logging.DEBUG, logger="gateway.http")
    client = token_app.test_client()
    answer = client.post(f"/at/ussd?token={TOKEN}", data=_form("2"), headers={"X-Request-Id": "lb-3"})
    assert answer.headers["X-Request-Id"] == "lb-3"
    line = [r for r in caplog.records if r.name == "gateway.http"][-1]
    assert line.getMessage().startswith("POST /at/ussd 200 ") and line.levelno == logging.DEBUG
    pending = token_app.extensions["webhook_metrics"].routes["/at/ussd"]
    assert pending[0] >= 1 and pending[3][200] >= 1


def test_an_error_on_the_fast_path_ends_the_session_politely(token_app, monkeypatch, caplog):
    service = token_app.extensions["gateway"].ussd
    monkeypatch.setattr(service, "answer", lambda hop: 1 / 0)
    answer = token_app.test_client().post(f"/at/ussd?token={TOKEN}", data=_form("2"))
    assert answer.status_code == 200 and answer.get_data(as_text=True).startswith("END ")
    assert any("unhandled error on /at/ussd" in r.getMessage() for r in caplog.records)
