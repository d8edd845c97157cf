"""The outgoing SMS path on real parts: `workers.jobs.send_sms` with the runtime built the way
`workers/runtime.py` builds it (from the environment), the africastalking SDK talking to the local
fake of the Africa's Talking API, a real database and Redis. Jobs run in-process; one test starts a
real worker, because only it shows what the worker's own logging writes."""
from __future__ import annotations

import io
import json
import logging
import threading
import time

import fake_at as fake_module
import pytest
from sqlalchemy import select

from gateway import logs
from gateway.channels.africastalking import AfricasTalkingProvider, interpret
from gateway.channels.base import REJECTED, RETRY, SENT
from gateway.channels.sink import SinkProvider
from gateway.errors import TransientSendError
from gateway.messaging import outbox
from gateway.store.models import AuditEvent, Message, Outbox
from workers import jobs
from workers import runtime as worker_runtime

NUMBER = "+6281234565678"
MASKED = "+62 812-****-5678"  # what gateway.phones.mask_numbers makes of NUMBER
BODY = "TPPO AB12CD: Penipuan kerja, korban perempuan, OKI. Hubungi pelapor +6281298765432."
SECRET_KEY = "atsk_9f8e7d6c5b4a39281706f5e4d3c2b1a0"  # distinctive, so a leak cannot hide
SDK_LOGGERS = ("", "africastalking", "requests", "urllib3", "urllib3.connectionpool", "workers", "gateway", "rq")


# ---- helpers ---------------------------------------------------------------------------------

@pytest.fixture
def make_runtime(monkeypatch, redis_url, data_key, tmp_path):
    """Set the worker's environment and return `workers.runtime.runtime()`, built fresh.

    Why: the job calls the lru-cached `runtime()`; each test needs its own settings, and the
    cache must not leak a runtime (and its open pools) into the next test."""
    built = []

    def make(database_url, **env):
        base = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "DATA_KEY": data_key,
                "VAR_DIR": str(tmp_path / "var"), "AT_USERNAME": "tppo-test"}
        for name, value in {**base, **env}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        worker_runtime.runtime.cache_clear()
        rt = worker_runtime.runtime()
        built.append(rt)
        return rt

    yield make
    worker_runtime.runtime.cache_clear()
    for rt in built:
        rt.db.dispose()
        if "redis" in rt.__dict__:
            rt.redis.close()


def at_env(fake, **extra):
    """Environment for sending through the SDK to the fake (as conftest.worker_env does)."""
    return {"AT_API_KEY": fake.api_key, "AT_API_URL": fake.base_url, **extra}


def queue_message(rt, to: str = NUMBER, body: str = BODY, state: str = "queued") -> int:
    """A Message row plus its outbox entry, as route_report writes them."""
    with rt.db.session() as session:
        message = Message(purpose="alert", state=state, to_enc=rt.vault.encrypt(to),
                          to_index=rt.vault.blind_index(to), body_enc=rt.vault.encrypt(body))
        session.add(message)
        session.flush()
        outbox.add(session, "send_sms", message.id)
        return message.id


def load(rt, message_id: int) -> Message:
    with rt.db.session() as session:
        return session.get(Message, message_id)


def outbox_done(rt, message_id: int) -> bool:
    with rt.db.session() as session:
        row = session.scalar(select(Outbox).where(Outbox.job == "send_sms", Outbox.target_id == message_id))
        return row.done_at is not None


def run_job(message_id: int):
    """Run send_sms as RQ would: its return value, or the exception that makes RQ retry."""
    try:
        return jobs.send_sms(message_id)
    except TransientSendError as exc:
        return exc


@pytest.fixture
def fast_timeout(monkeypatch):
    """The SDK timeout (connect, read) used by the provider, cut so a hang costs 0.3 s, not 10 s."""
    monkeypatch.setattr("gateway.channels.africastalking.SMS_SEND_TIMEOUT_SECONDS", (2.0, 0.3))


# ---- 1. provider mapping: what the fake answers -> what the row says ---------------------------

def _per_recipient(code):
    return lambda fake: fake.recipient_status(NUMBER, code)


def _http(status):
    return lambda fake: fake.fail_next(1, status)


def _hang(fake):
    fake.hang_next(1, 3.0)


# id, fault injected into the fake, expected state, status_code, failure_reason (substring)
SEND_CASES = [
    ("101 sent", None, "sent", 101, None),
    ("102 queued", _per_recipient(102), "sent", 102, None),
    ("100 processed", _per_recipient(100), "sent", 100, None),
    ("403 invalid number", _per_recipient(403), "rejected", 403, "InvalidPhoneNumber"),
    ("405 no balance", _per_recipient(405), "rejected", 405, "InsufficientBalance"),
    ("406 blacklisted", _per_recipient(406), "rejected", 406, "UserInBlacklist"),
    ("409 do not disturb", _per_recipient(409), "rejected", 409, "DoNotDisturbRejection"),
    ("500 per recipient", _per_recipient(500), "retry", 500, "InternalServerError"),
    ("501 per recipient", _per_recipient(501), "retry", 501, "GatewayError"),
    ("502 per recipient", _per_recipient(502), "retry", 502, "RejectedByGateway"),
    ("HTTP 500", _http(500), "retry", None, "HTTP error"),
    ("HTTP 502", _http(502), "retry", None, "HTTP error"),
    ("HTTP 503", _http(503), "retry", None, "HTTP error"),
    ("hang past timeout", _hang, "retry", None, "ReadTimeout"),
]


@pytest.mark.parametrize("inject, state, status_code, reason", [c[1:] for c in SEND_CASES],
                         ids=[c[0] for c in SEND_CASES])
def test_send_outcome_is_recorded(make_runtime, sqlite_url, fake_at, fast_timeout, inject, state, status_code,
                                  reason):
    rt = make_runtime(sqlite_url, **at_env(fake_at))
    message_id = queue_message(rt)
    if inject:
        inject(fake_at)

    result = run_job(message_id)

    row = load(rt, message_id)
    assert (row.state, row.status_code, row.provider, row.attempts) == (state, status_code, "africastalking", 1)
    if state == "sent":
        assert result == "sent"
        (accepted,) = fake_at.messages
        assert accepted["to"] == NUMBER and accepted["message"] == BODY and accepted["username"] == "tppo-test"
        assert row.provider_message_id == accepted["message_id"] and row.failure_reason is None
    else:
        assert reason in row.failure_reason and row.provider_message_id is None
    if state == "retry":
        assert isinstance(result, TransientSendError)  # RQ retries the job
        assert not outbox_done(rt, message_id)  # and the reconciler still owes it
    else:
        assert result == state and outbox_done(rt, message_id)
        with rt.db.session() as session:
            assert session.scalar(select(AuditEvent.action)) == f"alert_{state}"
    assert fake_at.requests_seen == 1


def test_wrong_api_key_is_retried_until_an_operator_fixes_it(make_runtime, sqlite_url, fake_at, caplog):
    """AT answers 401 text/plain. Nothing is sent, and nothing is dropped either: the message
    stays retryable with its outbox row open, so it goes out once the key is fixed."""
    rt = make_runtime(sqlite_url, **at_env(fake_at, AT_API_KEY="wrong-key"))
    message_id = queue_message(rt)

    assert isinstance(run_job(message_id), TransientSendError)
    row = load(rt, message_id)
    assert row.state == "retry" and row.provider_message_id is None
    assert "authentication is invalid" in row.failure_reason
    assert "check AT_USERNAME and AT_API_KEY" in caplog.text
    assert fake_at.messages == [] and fake_at.requests_seen == 1

    make_runtime(sqlite_url, **at_env(fake_at))  # the operator fixes the key
    assert run_job(message_id) == "sent"
    assert len(fake_at.messages) == 1


def test_number_the_sdk_refuses_is_rejected_without_a_request(make_runtime, sqlite_url, fake_at):
    rt = make_runtime(sqlite_url, **at_env(fake_at))
    message_id = queue_message(rt, to="081234565678")  # national form: not E.164, the SDK raises ValueError

    assert run_job(message_id) == "rejected"
    row = load(rt, message_id)
    assert (row.state, row.status_code, row.failure_reason) == ("rejected", 403, "InvalidPhoneNumber")
    assert fake_at.requests_seen == 0


def test_long_provider_error_still_fits_the_row(make_runtime, database_url, fake_at, monkeypatch):
    """A 5xx from a proxy in front of AT is often a long HTML page: the row must still be written
    (on PostgreSQL an over-long failure_reason would fail the update and strand the row in `sending`)."""
    page = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    monkeypatch.setattr(fake_module, "_text", lambda body, status: fake_module.Response(page, status=status))
    rt = make_runtime(database_url, **at_env(fake_at))
    message_id = queue_message(rt)
    fake_at.fail_next(1, 502)

    assert isinstance(run_job(message_id), TransientSendError)
    row = load(rt, message_id)
    assert row.state == "retry" and row.failure_reason.startswith("HTTP error: <html>")
    assert len(row.failure_reason) <= Message.failure_reason.type.length

    assert run_job(message_id) == "sent"  # and the retry goes through
    assert len(fake_at.messages) == 1


def test_garbled_json_answer_is_retried_not_rejected(make_runtime, sqlite_url, fake_at, monkeypatch):
    """A 201 whose JSON body was cut off makes requests raise JSONDecodeError, which is also a
    ValueError: it must not pass for the SDK's number check (a final InvalidPhoneNumber)."""
    cut = fake_module.Response('{"SMSMessageData": {"Recipients": [', status=201, content_type="application/json")
    monkeypatch.setattr(fake_at, "_send", lambda form: cut)
    rt = make_runtime(sqlite_url, **at_env(fake_at))
    message_id = queue_message(rt)

    assert isinstance(run_job(message_id), TransientSendError)
    row = load(rt, message_id)
    assert row.state == "retry" and row.status_code is None and row.failure_reason == "JSONDecodeError"
    assert fake_at.requests_seen == 1


# `interpret` on answers the fake does not produce: the SDK's string return, odd bodies.
def _answer(code, message_id="ATXid_1", number=NUMBER, status="Success"):
    return {"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [
        {"number": number, "statusCode": code, "messageId": message_id, "status": status, "cost": "0"}]}}


INTERPRET_CASES = [
    ("dict 101", _answer(101), SENT, "ATXid_1", 101),
    ("json string (charset in content type)", json.dumps(_answer(102, "ATXid_2")), SENT, "ATXid_2", 102),
    ("unreadable string", "<html>oops</html>", RETRY, None, None),
    ("bad sender id, no recipients", {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}},
     REJECTED, None, None),
    ("unknown status code", _answer(999, status="Weird"), RETRY, None, 999),
    ("sent without a message id", _answer(101, message_id="None"), SENT, None, 101),
    ("406 with messageId None", _answer(406, message_id="None", status="UserInBlacklist"), REJECTED, None, 406),
    ("other recipient listed first",
     {"SMSMessageData": {"Recipients": [_answer(406, number="+6280000000001")["SMSMessageData"]["Recipients"][0],
                                        _answer(101)["SMSMessageData"]["Recipients"][0]]}}, SENT, "ATXid_1", 101),
]


@pytest.mark.parametrize("response, outcome, message_id, code", [c[1:] for c in INTERPRET_CASES],
                         ids=[c[0] for c in INTERPRET_CASES])
def test_interpret(response, outcome, message_id, code):
    result = interpret(response, NUMBER)
    assert (result.outcome, result.provider_message_id, result.status_code) == (outcome, message_id, code)
    assert result.retryable is (outcome == RETRY)
    assert (result.reason is None) is (outcome == SENT)


# ---- provider choice --------------------------------------------------------------------------

@pytest.mark.parametrize("env, provider", [
    ({"AT_API_KEY": None}, SinkProvider),
    ({"AT_API_KEY": ""}, SinkProvider),  # empty means unset
    ({"AT_API_KEY": "k"}, AfricasTalkingProvider),
], ids=["no key", "empty key", "key"])
def test_provider_choice(make_runtime, sqlite_url, env, provider):
    rt = make_runtime(sqlite_url, **env)
    assert type(rt.provider) is provider


@pytest.mark.parametrize("username, api_url, base_url", [
    ("tppo-test", "http://127.0.0.1:8099/version1/", "http://127.0.0.1:8099/version1"),
    ("tppo-test", None, "https://api.africastalking.com/version1"),
    ("sandbox", None, "https://api.sandbox.africastalking.com/version1"),
])
def test_base_url_redirect(make_runtime, sqlite_url, username, api_url, base_url):
    rt = make_runtime(sqlite_url, AT_API_KEY="k", AT_USERNAME=username, AT_API_URL=api_url)
    assert rt.provider._service._make_url("/messaging") == base_url + "/messaging"


# ---- 2. idempotency: one SMS per message, however often the job runs ------------------------------

def test_send_twice_sends_once(make_runtime, database_url, fake_at):
    rt = make_runtime(database_url, **at_env(fake_at))
    message_id = queue_message(rt)

    assert run_job(message_id) == "sent"
    assert run_job(message_id) == "nothing to send: sent"

    assert len(fake_at.messages) == 1 and fake_at.requests_seen == 1
    row = load(rt, message_id)
    assert row.state == "sent" and row.attempts == 1 and row.provider_message_id == fake_at.messages[0]["message_id"]


def test_concurrent_copies_send_once(make_runtime, database_url, fake_at):
    """A second copy of the job starting while the first waits on the provider finds the row claimed."""
    rt = make_runtime(database_url, **at_env(fake_at))
    message_id = queue_message(rt)
    fake_at.hang_next(1, 0.5)  # slow, but well within the SDK timeout
    results = {}
    first = threading.Thread(target=lambda: results.update(first=run_job(message_id)))
    first.start()
    deadline = time.monotonic() + 5
    while fake_at.requests_seen < 1 and time.monotonic() < deadline:
        time.sleep(0.01)

    assert run_job(message_id) == "nothing to send: sending"
    first.join(5)

    assert results == {"first": "sent"}
    assert len(fake_at.messages) == 1 and fake_at.requests_seen == 1


@pytest.mark.parametrize("state", ["sending", "sent", "delivered", "rejected", "failed"])
def test_message_past_queued_is_not_sent(make_runtime, sqlite_url, fake_at, state):
    rt = make_runtime(sqlite_url, **at_env(fake_at))
    message_id = queue_message(rt, state=state)

    assert run_job(message_id) == f"nothing to send: {state}"

    assert fake_at.requests_seen == 0
    row = load(rt, message_id)
    assert row.state == state and row.attempts == 0
    # a message in flight keeps its outbox entry open: the reconciler resets it if its sender died
    assert outbox_done(rt, message_id) is (state != "sending")


def test_transient_failure_then_one_send(make_runtime, database_url, fake_at):
    rt = make_runtime(database_url, **at_env(fake_at))
    message_id = queue_message(rt)
    fake_at.fail_next(1, 500)

    assert isinstance(run_job(message_id), TransientSendError)
    row = load(rt, message_id)
    assert row.state == "retry" and row.attempts == 1 and fake_at.messages == []

    assert run_job(message_id) == "sent"  # RQ's retry
    assert run_job(message_id) == "nothing to send: sent"  # and a stray duplicate of it
    row = load(rt, message_id)
    assert (row.state, row.attempts, row.failure_reason) == ("sent", 2, None)
    assert row.provider_message_id == fake_at.messages[0]["message_id"]
    assert len(fake_at.messages) == 1 and fake_at.requests_seen == 2
    assert outbox_done(rt, message_id)


# ---- 3. secrets and numbers stay out of logs and errors -------------------------------------------

@pytest.fixture
def redacted_log():
    """The handler `gateway.logs.configure` installs, writing into a buffer for the test.

    Why find it by its filter: configure is idempotent, so an earlier test may have installed it."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    logs.configure(logging.DEBUG)
    (handler,) = [h for h in root.handlers if any(isinstance(f, logs.RedactingFilter) for f in h.filters)]
    stream = handler.stream
    handler.setStream(io.StringIO())
    root.setLevel(logging.DEBUG)
    yield handler.stream
    handler.setStream(stream)
    if handler not in before:
        root.removeHandler(handler)
    root.setLevel(level)


def _scenarios(fake):
    """Every path through the provider: accepted, rejected per recipient, 5xx, timeout, bad key."""
    yield "sent", None
    yield "rejected", lambda: fake.recipient_status(NUMBER, 406)
    yield "retry 502", lambda: fake.recipient_status(NUMBER, 502)
    yield "http 500", lambda: fake.fail_next(1, 500)
    yield "timeout", lambda: fake.hang_next(1, 3.0)


def test_api_key_and_number_stay_out_of_logs(make_runtime, sqlite_url, fake_at, fast_timeout, caplog, redacted_log,
                                             monkeypatch):
    monkeypatch.setattr(fake_at, "api_key", SECRET_KEY)
    for name in SDK_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    rt = make_runtime(sqlite_url, **at_env(fake_at))
    outcomes, errors = [], []
    for _name, inject in _scenarios(fake_at):
        fake_at.reset()
        if inject:
            inject()
        result = run_job(queue_message(rt, to=NUMBER))
        outcomes.append(result if isinstance(result, str) else type(result).__name__)
        if isinstance(result, Exception):
            errors.append(result)
            logging.getLogger("rq.worker").exception("job failed", exc_info=result)  # as RQ logs a failure
    # A record naming the number, from a third-party logger and in a traceback, as the SDK's
    # ValueError("Invalid phone number: ...") would be if anything logged it.
    logging.getLogger("urllib3.connectionpool").debug("sending to %s", NUMBER)
    try:
        raise ValueError("Invalid phone number: " + NUMBER)
    except ValueError:
        logging.getLogger("africastalking").exception("send failed")
    # Wrong key: the key that was refused must not leak either.
    wrong = make_runtime(sqlite_url, **at_env(fake_at, AT_API_KEY=SECRET_KEY + "-old"))
    refused = run_job(queue_message(wrong, to=NUMBER))
    outcomes.append(type(refused).__name__)
    errors.append(refused)

    assert outcomes == ["sent", "rejected", "TransientSendError", "TransientSendError", "TransientSendError",
                        "TransientSendError"]
    written = redacted_log.getvalue()
    assert '"POST /version1/messaging HTTP/1.1" 201' in caplog.text  # urllib3 DEBUG was captured
    assert "ReadTimeout" in written and MASKED in written  # the filter ran on every record
    for text in (caplog.text, written, *map(str, errors), *map(repr, errors), repr(rt.settings)):
        assert SECRET_KEY not in text
    assert NUMBER not in written and NUMBER[1:] not in written
    with rt.db.session() as session:
        reasons = session.scalars(select(Message.failure_reason)).all()
    assert all(SECRET_KEY not in (r or "") and NUMBER not in (r or "") for r in reasons)


@pytest.mark.slow
def test_worker_log_holds_no_key_or_number(start_worker, fake_at, make_runtime, settings_overrides, monkeypatch):
    """The real worker, with its own logging set-up, sending one message and failing another."""
    monkeypatch.setattr(fake_at, "api_key", SECRET_KEY)
    rt = make_runtime(settings_overrides["database_url"], **at_env(fake_at),
                      VAR_DIR=str(settings_overrides["var_dir"]))
    sent_id, failing_id = queue_message(rt), queue_message(rt, to="+6281298765432")
    fake_at.recipient_status("+6281298765432", 500)
    proc = start_worker({"AT_API_KEY": SECRET_KEY})
    for message_id in (sent_id, failing_id):
        outbox.enqueue(rt, "send_sms", message_id)

    fake_at.wait_for(1, timeout=15)
    deadline = time.monotonic() + 15
    while load(rt, failing_id).state != "retry" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let the worker write its failure record
    proc.log_file.flush()
    text = proc.log_path.read_text()

    assert load(rt, sent_id).state == "sent" and load(rt, failing_id).state == "retry"
    assert "TransientSendError" in text, text
    assert SECRET_KEY not in text
    for number in (NUMBER, "+6281298765432"):
        assert number not in text and number[1:] not in text


# ---- 4. the local sink ------------------------------------------------------------------------------

def test_sink_stores_and_prints_masked(make_runtime, sqlite_url, tmp_path, capsys):
    rt = make_runtime(sqlite_url, AT_API_KEY=None, AT_API_URL=None)
    message_id = queue_message(rt)

    assert run_job(message_id) == "sent"
    assert run_job(message_id) == "nothing to send: sent"

    row = load(rt, message_id)
    assert (row.state, row.provider, row.status_code) == ("sent", "sink", 101)
    assert row.provider_message_id.startswith("sink-")
    assert rt.vault.decrypt(row.to_enc) == NUMBER  # the database keeps the number, encrypted
    sink_log = tmp_path / "var" / "sms-sink.log"
    (line,) = sink_log.read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert entry["id"] == row.provider_message_id
    assert entry["to"] == MASKED
    assert entry["body"] == BODY.replace("+6281298765432", "+62 812-****-5432")
    printed = capsys.readouterr().out
    assert printed == f"[sms-sink] to {MASKED}: {entry['body']}\n"
    for text in (line, printed):
        assert NUMBER not in text and "6281298765432" not in text


ENVIRONMENTS = {
    "a proxy": ({"HTTPS_PROXY": "http://proxy.internal:3128"}, {"https": "http://proxy.internal:3128"}, True),
    "a proxy the host bypasses": ({"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": "api.africastalking.com"},
                                  {}, True),
    "a CA bundle": ({"REQUESTS_CA_BUNDLE": "/etc/ssl/own-ca.pem"}, {}, "/etc/ssl/own-ca.pem"),
    "nothing": ({}, {}, True),
}


@pytest.mark.parametrize(("env", "proxies", "verify"), ENVIRONMENTS.values(), ids=ENVIRONMENTS.keys())
def test_the_sdk_session_keeps_what_the_environment_says(monkeypatch, env, proxies, verify):
    """The environment is read once, when the provider is built, instead of on every SMS; a
    proxy or CA bundle an operator sets must still apply to every send."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    provider = AfricasTalkingProvider("sandbox", SECRET_KEY, api_url="https://api.africastalking.com/version1")
    session = provider._service._http
    assert (session.proxies, session.verify, session.trust_env) == (proxies, verify, False)
