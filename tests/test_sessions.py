"""USSD sessions and Redis. An Africa's Talking session keeps nothing there between hops (its
`text` carries every input, and the engine replays them), so losing Redis mid-session changes
nothing a caller sees. A channel that sends only the latest answer keeps its state there, with
the aggregator's TTL; neither ever holds a phone number, and a report is filed in the database
whatever Redis does."""
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
from gateway.channels.africastalking import render
from gateway.store.models import Outbox, Report
from gateway.ussd import UssdHop

REPORTER = "+6281298765432"
NUMBER_FORMS = ("+6281298765432", "6281298765432", "081298765432", "0812-9876-5432", "81298765432")
# English, report, job fraud, woman, more regions, Palembang, someone in danger, contact allowed, send
KEYS = ["4", "2", "1", "1", "1", "98", "15", "1", "1", "1"]
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


class LatestOnly:
    """A channel that sends only the latest answer, as some aggregators do (none is wired yet:
    this drives the USSD service directly). Its state is what Redis keeps between hops."""

    CHANNEL = "latest-only"

    def __init__(self, app, session_id: str = "L-1"):
        self.ussd, self.session_id = app.extensions["gateway"].ussd, session_id
        self.key = f"ussd:{self.CHANNEL}:{session_id}"

    def send(self, key=None) -> str:
        inputs = () if key is None else (key,)
        return render(self.ussd.answer(UssdHop(self.CHANNEL, self.session_id, REPORTER, inputs, cumulative=False)))

    def run(self, keys) -> list[str]:
        return [self.send()] + [self.send(k) for k in keys]


def _reference_screens(client) -> list[str]:
    """The same journey with nothing going wrong, for comparison."""
    return Phone(flask_transport(client), number=REPORTER).run(KEYS)


def _reports(runtime) -> list[Report]:
    with runtime.db.session() as session:
        return session.scalars(select(Report)).all()


def _no_code(screen: str) -> str:
    return CODE.sub("Code: ?.", screen)


# ---- Africa's Talking: nothing kept, so nothing to lose -----------------------------------

def test_africas_talking_sessions_keep_nothing_in_redis_and_survive_a_flush(client, runtime, r):
    """Mid-session, on page 2 of the regions in English, Redis holds no session key; flushed,
    the caller goes on to exactly the screens they would have seen."""
    expected = _reference_screens(client)
    phone = Phone(flask_transport(client), number=REPORTER)
    screens = phone.run(KEYS[:6])
    assert r.keys("ussd:*") == []
    r.flushdb()
    screens += [phone.press(k) for k in KEYS[6:]]
    assert screens[:-1] == expected[:-1]
    ref = CODE.search(screens[-1]).group(1)
    assert screens[-1].startswith("END Report received.")
    assert {(x.ref, x.lang, x.region_code, x.urgent) for x in _reports(runtime)} >= {(ref, "en", "16.71", True)}


def test_same_session_and_text_again_shows_the_same_screen(client):
    """A slow network or an aggregator retry: the same sessionId and text get the same screen,
    and the next key carries on from there."""
    expected = _reference_screens(client)
    phone = Phone(flask_transport(client), number=REPORTER)
    screens = phone.run(KEYS[:6])
    status, again = phone.post(phone.form())
    assert status == 200 and again == screens[-1] == expected[6]
    assert phone.press(KEYS[6]) == expected[7]


# ---- a channel that sends the latest answer only: its state in Redis ----------------------

def test_latest_only_channel_walks_the_same_journey_from_its_kept_state(app, client, runtime, r):
    expected = _reference_screens(client)
    phone = LatestOnly(app)
    screens = phone.run(KEYS[:6])
    assert [k.decode() for k in r.keys("ussd:*")] == [phone.key]  # one key, named by sessionId only
    screens += [phone.send(k) for k in KEYS[6:]]
    assert [_no_code(s) for s in screens] == [_no_code(s) for s in expected]
    assert not r.exists(phone.key)  # gone with the END
    assert len(_reports(runtime)) == 2


def test_latest_only_state_expires_with_the_aggregator_session(app, r):
    phone = LatestOnly(app)
    phone.run(KEYS[:2])
    assert SESSION_TTL_SECONDS - 5 <= r.ttl(phone.key) <= SESSION_TTL_SECONDS
    r.expire(phone.key, 5)  # as if the caller had been silent for almost the whole session
    phone.send(KEYS[2])
    assert SESSION_TTL_SECONDS - 5 <= r.ttl(phone.key) <= SESSION_TTL_SECONDS  # each hop renews it
    phone.send("00")  # exit
    assert not r.exists(phone.key)


UNTRUSTED = {
    "another flow version": lambda v: json.dumps({**json.loads(v), "v": -1}),
    "not JSON": lambda v: "{not json",
    "JSON but not an object": lambda v: "[1, 2]",
    "a state in another shape": lambda v: json.dumps({**json.loads(v), "st": {"screen": "victim"}}),
    "no state at all": lambda v: json.dumps({"v": json.loads(v)["v"]}),
}


@pytest.mark.parametrize("tamper", UNTRUSTED.values(), ids=UNTRUSTED.keys())
def test_latest_only_state_it_cannot_trust_starts_the_caller_again(app, client, r, tamper):
    """The answer was meant for a screen that can no longer be told: the first screen again,
    never a jump somewhere the caller did not choose."""
    first = _reference_screens(client)[0]
    phone = LatestOnly(app)
    assert phone.run(KEYS[:4])[-1] != first
    r.set(phone.key, tamper(r.get(phone.key).decode()), keepttl=True)
    assert phone.send(KEYS[4]) == first
    phone.send("4")  # and from there it carries on: the language menu
    assert json.loads(r.get(phone.key))["st"]["s"] == "language"


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


# ---- what Redis holds ---------------------------------------------------------------------

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


def test_redis_holds_no_phone_number(app, client, r):
    phone = Phone(flask_transport(client), number=REPORTER)
    phone.run(KEYS[:-1])  # on the confirmation screen, contact allowed
    latest = LatestOnly(app)
    latest.run(KEYS[:-1])  # the same, on a channel whose state Redis keeps
    during = _everything_in(r)
    assert latest.key in during
    ref = CODE.search(phone.press(KEYS[-1])).group(1)
    after = _everything_in(r)
    assert "route_report" in after  # the queued job is there too
    for form in NUMBER_FORMS:
        assert form not in during and form not in after, f"{form!r} is in Redis"
    assert ref not in after  # nor anything that links the job to the caller's code
