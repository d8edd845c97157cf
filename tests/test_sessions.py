"""USSD session state in Redis: a cache with the aggregator's TTL, never the record. Losing it,
or Redis itself, costs a replay of the inputs, never a caller's report; it holds no number."""
from __future__ import annotations

import json
import re
import socket
import time
import zlib

import pytest
import redis
from phone import Phone, flask_transport
from sqlalchemy import select

from config.settings import SESSION_TTL_SECONDS
from gateway import outbox
from gateway.sessions import digest
from gateway.store.models import Outbox, Report

REPORTER = "+6281298765432"
NUMBER_FORMS = ("+6281298765432", "6281298765432", "081298765432", "0812-9876-5432", "81298765432")
# English, report, job fraud, woman, more regions, Palembang, someone in danger, contact allowed, send
KEYS = ["4", "2", "1", "1", "1", "98", "14", "1", "1", "1"]
CODE = re.compile(r"(?:Code|Kode): ([A-Z0-9]{6})\.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _session_key(phone: Phone) -> str:
    return f"ussd:at-ussd:{phone.session_id}"


def _reference_screens(client) -> list[str]:
    """The same journey with nothing going wrong, for comparison."""
    return Phone(flask_transport(client), number=REPORTER).run(KEYS)


def _reports(runtime) -> list[Report]:
    with runtime.db.session() as session:
        return session.scalars(select(Report)).all()


# ---- Redis loses the state ----------------------------------------------------------------

def test_flushed_redis_mid_session_continues_where_the_caller_was(client, runtime, r):
    """Redis restarts empty while a caller is on page 2 of the regions, in English: the next
    hop replays the inputs and lands on exactly the screen it would have."""
    expected = _reference_screens(client)
    phone = Phone(flask_transport(client), number=REPORTER)
    screens = phone.run(KEYS[:6])
    assert r.exists(_session_key(phone))
    r.flushdb()
    screens += [phone.press(k) for k in KEYS[6:]]
    assert screens[:-1] == expected[:-1]
    ref = CODE.search(screens[-1]).group(1)
    assert screens[-1].startswith("END Report received.")
    assert {(x.ref, x.lang, x.region_code, x.urgent) for x in _reports(runtime)} >= {(ref, "en", "16.71", True)}


UNTRUSTED = {
    "another flow version": lambda v: json.dumps({**json.loads(v), "v": -1}),
    "computed from other inputs": lambda v: json.dumps({**json.loads(v), "d": digest(("2", "1"))}),
    "more inputs than the hop has": lambda v: json.dumps({**json.loads(v), "n": 99}),
    "not JSON": lambda v: "{not json",
    "JSON but not an object": lambda v: "[1, 2]",
    "a state in another shape": lambda v: json.dumps({**json.loads(v), "st": {"screen": "victim"}}),
    "a count that is not a number": lambda v: json.dumps({**json.loads(v), "n": "4"}),
}


@pytest.mark.parametrize("tamper", UNTRUSTED.values(), ids=UNTRUSTED.keys())
def test_untrusted_cached_state_is_replayed(client, r, tamper):
    expected = _reference_screens(client)
    phone = Phone(flask_transport(client), number=REPORTER)
    screens = phone.run(KEYS[:4])
    key = _session_key(phone)
    r.set(key, tamper(r.get(key).decode()), keepttl=True)
    screens.append(phone.press(KEYS[4]))
    assert screens == expected[:6]


# ---- Redis is down ------------------------------------------------------------------------

@pytest.fixture
def redis_down_app(settings_overrides):
    """The app with REDIS_URL on a port where nothing listens."""
    from gateway import create_app

    app = create_app({**settings_overrides, "redis_url": f"redis://127.0.0.1:{_free_port()}/0"})
    yield app
    app.extensions["gateway"].runtime.db.dispose()
    app.extensions["gateway"].runtime.redis.close()


def test_redis_down_still_files_the_report(redis_down_app, runtime):
    """Sessions replay, the report is committed with its outbox row, and the reconciler enqueues
    it once Redis answers again (`runtime` here is the same database with a live Redis)."""
    down = redis_down_app.extensions["gateway"].runtime
    client = redis_down_app.test_client()
    phone = Phone(flask_transport(client), number=REPORTER)
    screens, slowest = [], 0.0
    for i, key in enumerate([None, *KEYS]):
        started = time.perf_counter()
        screens.append(phone.dial() if i == 0 else phone.press(key))
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 1.0, f"a hop took {slowest:.2f}s with Redis down"
    assert all(s.startswith("CON ") for s in screens[:-1])
    ref = CODE.search(screens[-1]).group(1)
    with down.db.session() as session:
        report = session.scalar(select(Report).where(Report.ref == ref))
        row = session.scalar(select(Outbox).where(Outbox.target_id == report.id))
    assert (row.job, row.enqueued_at, row.attempts, row.done_at) == ("route_report", None, 0, None)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"status": "not ready", "checks": {"database": "ok", "redis": "down"}}
    assert client.get("/healthz").status_code == 200
    assert outbox.reconcile(runtime) == 1 and runtime.queue.job_ids == [f"route_report-{report.id}"]


# ---- what Redis holds, and for how long ---------------------------------------------------

def test_session_state_expires_with_the_aggregator_session(client, r):
    phone = Phone(flask_transport(client), number=REPORTER)
    phone.run(KEYS[:2])
    key = _session_key(phone)
    assert [k.decode() for k in r.keys("ussd:*")] == [key]  # one session key, named by sessionId only
    assert SESSION_TTL_SECONDS - 5 <= r.ttl(key) <= SESSION_TTL_SECONDS
    r.expire(key, 5)  # as if the caller had been silent for almost the whole session
    phone.press(KEYS[2])
    assert SESSION_TTL_SECONDS - 5 <= r.ttl(key) <= SESSION_TTL_SECONDS  # each hop renews it
    phone.press("00")  # exit
    assert not r.exists(key)


def _everything_in(r) -> str:
    """Every key and value in the Redis database, decompressing what RQ compresses."""
    parts = []
    for key in r.scan_iter():
        kind = r.type(key).decode()
        if kind == "string":
            values = [r.get(key)]
        elif kind == "hash":
            values = [item for pair in r.hgetall(key).items() for item in pair]
        elif kind == "list":
            values = r.lrange(key, 0, -1)
        elif kind == "set":
            values = list(r.smembers(key))
        else:
            assert kind == "zset", f"{key!r} is a {kind}: read it here too"
            values = r.zrange(key, 0, -1)
        for value in [key, *values]:
            parts.append(value.decode("latin-1"))
            try:
                parts.append(zlib.decompress(value).decode("latin-1"))
            except zlib.error:
                pass
    return "\n".join(parts)


def test_redis_holds_no_phone_number(client, r):
    phone = Phone(flask_transport(client), number=REPORTER)
    phone.run(KEYS[:-1])  # on the confirmation screen, contact allowed
    during = _everything_in(r)
    assert _session_key(phone) in during
    ref = CODE.search(phone.press(KEYS[-1])).group(1)
    after = _everything_in(r)
    assert "route_report" in after  # the queued job is there too
    for form in NUMBER_FORMS:
        assert form not in during and form not in after, f"{form!r} is in Redis"
    assert ref not in after  # nor anything that links the job to the caller's code


# ---- resuming -----------------------------------------------------------------------------

def test_same_session_after_a_pause_resumes_at_the_same_screen(app, client, monkeypatch):
    """The same sessionId and text again (a slow network, a retry) shows the same screen from
    the cached state, without replaying; the next key carries on from there."""
    engine = app.extensions["gateway"].ussd.engine
    applied, run = [], engine.run
    monkeypatch.setattr(engine, "run", lambda todo, state=None: applied.append(tuple(todo)) or run(todo, state))
    expected = _reference_screens(client)
    phone = Phone(flask_transport(client), number=REPORTER)
    screens = phone.run(KEYS[:6])
    applied.clear()
    status, again = phone.post(phone.form())
    assert status == 200 and again == screens[-1] == expected[6]
    assert applied == [()]  # resumed, not replayed
    assert phone.press(KEYS[6]) == expected[7] and applied[-1] == (KEYS[6],)
