"""The red-team run, replayed: every attack it found, against the app started in production mode
(strong secrets, a registered duty roster, SMS through the real africastalking SDK to the local
fake provider, behind one reverse proxy), each test one attack and what must come of it. The
jobs run in this process (tests/inline_jobs.py). SECURITY.md lists these under "How we test it"."""
from __future__ import annotations

import base64
import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from console_seed import PASSWORD, add_staff, page_token, sign_in
from inline_jobs import drain
from phone import Phone
from production import production_settings
from sqlalchemy import select, text

from gateway import create_app, limits
from gateway.cases import dispatch, roster
from gateway.console import accounts
from gateway.errors import ConfigError
from gateway.messaging import outbox
from gateway.store.models import Assignment, Report

AGGREGATOR, PROXY, ATTACKER, STAFF_DESK = "196.201.214.100", "10.0.0.2", "203.0.113.66", "198.51.100.20"
REPORTER, OTHER = "+6281298765432", "+6281311112222"
OKI_DESK, POLDA_DESK = "+6281277776666", "+6281277770000"
REPORT = ["1", "1", "1", "98", "10", "2", "1", "1"]  # job fraud, woman, OKI (page 2), not urgent, contact ok, send
WHOLE_PATH = "*".join(REPORT)
CONSOLE = "https://console.example"
SEND_BUDGET = 20  # SMS to residents a minute, all numbers together (LIMIT_SMS_SENT_PER_MINUTE)
_ids = itertools.count(1)


@dataclass
class Production:
    app: object
    settings: dict
    fake_at: object
    monkeypatch: object

    @property
    def rt(self):
        return self.app.extensions["gateway"].runtime

    def post(self, path: str, token: str = None, via: str = AGGREGATOR, **kwargs):
        """As the reverse proxy passes it on: from the proxy's address, the caller in X-Forwarded-For."""
        token = self.settings["webhook_token"] if token is None else token
        return self.app.test_client().post(f"{path}?token={token}", environ_base={"REMOTE_ADDR": PROXY},
                                           headers={"X-Forwarded-For": via}, **kwargs)

    def ussd(self, session_id: str, keys: str, number: str = REPORTER, **kwargs):
        return self.post("/at/ussd", data={"sessionId": session_id, "phoneNumber": number, "serviceCode": "*123#",
                                           "networkCode": "51010", "text": keys}, **kwargs)

    def screen(self, session_id: str, keys: str, number: str = REPORTER) -> str:
        answer = self.ussd(session_id, keys, number)
        assert answer.status_code == 200 and answer.mimetype == "text/plain", answer.get_data(as_text=True)
        return answer.get_data(as_text=True)

    def report(self, number: str = REPORTER) -> str:
        """A whole USSD session, one key a hop, as a handset sends it; returns the code."""
        phone = Phone(lambda form: self._status_body(self.post("/at/ussd", data=form)), number=number)
        return phone.run(REPORT)[-1].split("Kode: ")[1][:6]

    @staticmethod
    def _status_body(response):
        return response.status_code, response.get_data(as_text=True)

    def sms(self, sender: str, body: str):
        return self.post("/at/sms", data={"from": sender, "to": "12345", "text": body,
                                          "id": f"ATSMS_ATTACK_{next(_ids)}", "date": "2026-12-03 10:00:00"})

    def run_jobs(self, skip=("finish_report", "check_ack")) -> None:
        """What the workers would do now (a deadline check only when a test says its time has come)."""
        drain(self.rt, self.monkeypatch, skip=skip)

    def reports(self) -> int:
        with self.rt.db.session() as session:
            return len(session.scalars(select(Report.id)).all())


@pytest.fixture
def prod(settings_overrides, fake_at, monkeypatch):
    """The app as `GATEWAY_ENV=production` starts it; the duty roster registered beforehand by an
    operator command, as production refuses to start without one."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    now = time.time()  # every limit's window stays the one it began in, however long the test takes
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: now))
    operator = create_app(settings_overrides)
    roster.add(operator.extensions["gateway"].runtime, "polres_oki", "Piket PPA OKI", OKI_DESK)
    roster.add(operator.extensions["gateway"].runtime, "polda_ppa_ppo", "Piket Polda", POLDA_DESK)
    operator.extensions["gateway"].runtime.db.dispose()
    settings = production_settings(fake_at, proxy_hops=1, limit_sms_sent_per_minute=SEND_BUDGET)
    app = create_app({**settings_overrides, **settings})
    assert app.extensions["gateway"].runtime.settings.production
    yield Production(app, settings, fake_at, monkeypatch)
    app.extensions["gateway"].runtime.db.dispose()
    app.extensions["gateway"].runtime.redis.close()


# -- 1. a wrong-token flood must not silence the aggregator -----------------------------------------

def test_attack_wrong_token_flood_never_silences_the_right_token(prod):
    """Through the proxy, the attacker names the aggregator's address in X-Forwarded-For, so its
    wrong tokens count against that address: the right token from it still answers every time."""
    statuses = []
    for n in range(45):
        flood = prod.ussd(f"ATUid_flood_{n}", "", token="guessed-token", via=AGGREGATOR)
        statuses.append(flood.status_code)
        assert flood.mimetype == "text/plain" and flood.get_data(as_text=True).startswith("END ")
        right = prod.ussd(f"ATUid_real_{n}", "", number=f"+62812987{n:05d}", via=AGGREGATOR)
        assert right.status_code == 200 and right.get_data(as_text=True).startswith("CON ")
    assert statuses[:30] == [403] * 30 and set(statuses[30:]) == {429}
    sms = prod.sms(REPORTER, "TANDA")
    assert sms.status_code == 200  # SMS from the same address are not silenced either


# -- 2. a cookie copied before sign-out --------------------------------------------------------------

def test_attack_a_cookie_copied_before_sign_out_opens_nothing_after(prod):
    ref = prod.report()
    prod.run_jobs()
    add_staff(prod.rt, "oki", "agency_staff", "polres_oki")
    desk = prod.app.test_client()
    assert sign_in(desk, "oki", base_url=CONSOLE).status_code == 302
    stolen = prod.app.test_client()
    stolen.set_cookie("tppo_console", desk.get_cookie("tppo_console", domain="console.example",
                                                      path="/console").value,
                      domain="console.example", path="/console")
    case = stolen.get(f"/console/cases/{ref}", base_url=CONSOLE)
    assert case.status_code == 200 and REPORTER in case.get_data(as_text=True)  # the copy works until sign-out
    token = page_token(stolen, f"/console/cases/{ref}", base_url=CONSOLE)
    desk.post("/console/sign-out", base_url=CONSOLE,
              data={"csrf_token": page_token(desk, "/console/cases", base_url=CONSOLE)})
    after = stolen.get(f"/console/cases/{ref}", base_url=CONSOLE)
    assert after.status_code == 302 and "/console/sign-in" in after.headers["Location"]
    note = stolen.post(f"/console/cases/{ref}/note", base_url=CONSOLE, data={"csrf_token": token, "note": "x"})
    assert note.status_code == 400


# -- 3. per-number limits skipped ----------------------------------------------------------------------

def test_attack_a_whole_path_first_hop_cannot_file_past_the_daily_limit(prod):
    limit = prod.rt.limits["reports"].count
    screens = [prod.screen(f"ATUid_burst_{n}", WHOLE_PATH) for n in range(30)]
    assert sum("Kode: " in s for s in screens) == limit == prod.reports()
    assert all(s.startswith("END Terlalu banyak panggilan") for s in screens[limit:])


def test_attack_a_refused_number_cannot_file_again_with_the_whole_path(prod):
    sessions = prod.rt.limits["ussd"].count
    for n in range(sessions):
        assert prod.screen(f"ATUid_dial_{n}", "").startswith("CON ")
    refused = prod.screen("ATUid_refused", "")
    assert refused.startswith("END Terlalu banyak panggilan")
    assert prod.screen("ATUid_refused", WHOLE_PATH).startswith("END Terlalu banyak panggilan")
    assert prod.screen("ATUid_fresh", WHOLE_PATH).startswith("END Terlalu banyak panggilan")
    assert prod.reports() == 0


def test_attack_an_unreadable_number_is_limited(prod):
    limit = prod.rt.limits["reports"].count
    screens = [prod.screen(f"ATUid_nan_{n}", WHOLE_PATH, number="not-a-number") for n in range(limit + 5)]
    assert sum("Kode: " in s for s in screens) == limit == prod.reports()
    assert screens[-1].startswith("END ")


# -- 4. production on the local sink ---------------------------------------------------------------------

@pytest.mark.parametrize("sink", [{"at_api_key": None}, {"sms_provider": "sink"}], ids=["no AT_API_KEY", "sink"])
def test_attack_production_refuses_to_start_on_the_sink(settings_overrides, prod, sink):
    with pytest.raises(ConfigError, match="needs an SMS provider"):
        create_app({**settings_overrides, **prod.settings, **sink})


# -- 5. 500s on /8x8/* ---------------------------------------------------------------------------------

def test_attack_8x8_garbage_is_answered_400_never_500(prod):
    nested = prod.post("/8x8/sms", data="[" * 5000 + "]" * 5000, content_type="application/json")
    assert nested.status_code == 400
    for state in (["delivered"], {"state": "delivered"}):
        odd = prod.post("/8x8/delivery", json={"namespace": "SMS", "eventType": "outbound_message_status_changed",
                                                "payload": {"umid": "8x8-x-1", "status": {"state": state}}})
        assert odd.status_code == 400
    surrogate = prod.post("/8x8/sms", content_type="application/json", data=(
        '{"namespace": "SMS", "eventType": "inbound_message_received", "payload": {"umid": "8x8-x-2", '
        '"source": "+6281298765432", "body": "LAPOR \\ud800 di Muba"}}'))
    assert (surrogate.status_code, surrogate.get_data(as_text=True)) == (200, "new")  # stored, not lost


# -- 6. anyone could lock any console account --------------------------------------------------------

def test_attack_guessing_cannot_lock_a_staff_member_out(prod):
    add_staff(prod.rt, "oki", "agency_staff", "polres_oki")
    attacker = {"X-Forwarded-For": ATTACKER}
    for _ in range(accounts.FAILED_SIGN_INS_PER_ADDRESS.count + 1):
        guess = sign_in(prod.app.test_client(), "oki", "guess guess guess", base_url=CONSOLE, headers=attacker)
        assert guess.status_code in (401, 429)
    assert guess.status_code == 429  # the guessing address is throttled
    own = sign_in(prod.app.test_client(), "oki", base_url=CONSOLE, headers={"X-Forwarded-For": STAFF_DESK})
    assert own.status_code == 302  # the owner, from her own network, is not locked out


# -- 7. HEAD sign-in and CR/LF in next= ---------------------------------------------------------------

def test_attack_head_sign_in_and_crlf_next_are_harmless(prod):
    add_staff(prod.rt, "oki", "agency_staff", "polres_oki")
    client = prod.app.test_client()
    head = client.open("/console/sign-in", method="HEAD", base_url=CONSOLE, data={"login": "oki", "password": PASSWORD})
    assert head.status_code == 200
    assert client.get("/console/cases", base_url=CONSOLE).status_code == 302  # not signed in
    token = page_token(client, "/console/sign-in", base_url=CONSOLE)
    crlf = client.post("/console/sign-in", base_url=CONSOLE, data={
        "login": "oki", "password": PASSWORD, "csrf_token": token, "next": "/console/cases\r\nSet-Cookie: x=1"})
    assert crlf.status_code == 302 and crlf.headers["Location"] == "/console/cases"


# -- 8. weak secrets, open /metrics -------------------------------------------------------------------

@pytest.mark.parametrize("weak", [
    {"webhook_token": "a"}, {"secret_key": "s" * 48}, {"data_key": base64.urlsafe_b64encode(bytes(32)).decode()},
    {"secret_key": "DATA_KEY"}, {"metrics_token": None},
], ids=["one-letter token", "repeated secret key", "all-zero data key", "secret key = data key", "no metrics token"])
def test_attack_weak_or_shared_secrets_refuse_to_start(settings_overrides, prod, weak):
    if weak.get("secret_key") == "DATA_KEY":
        weak = {"secret_key": settings_overrides["data_key"]}
    with pytest.raises(ConfigError):
        create_app({**settings_overrides, **prod.settings, **weak})


def test_attack_metrics_are_closed_without_the_token(prod):
    client = prod.app.test_client()
    assert client.get("/metrics").status_code == 401
    opened = client.get("/metrics", headers={"Authorization": f"Bearer {prod.settings['metrics_token']}"})
    assert opened.status_code == 200 and "gateway_reports" in opened.get_data(as_text=True)


# -- 9. SMS to any number; SELESAI for every agency ----------------------------------------------------

def test_attack_spoofed_info_floods_are_capped_and_alerts_still_go(prod):
    """35 `INFO OKI`, each with another spoofed sender: no per-number limit applies, the budget
    across numbers does; the alert of a report filed meanwhile is not held by it."""
    for n in range(35):
        assert prod.sms(f"+62812555{n:05d}", "INFO OKI").status_code == 200
    prod.run_jobs()
    assert len(prod.fake_at.messages) == SEND_BUDGET
    prod.report(OTHER)
    prod.run_jobs()
    assert [m["to"] for m in prod.fake_at.messages].count(OKI_DESK) == 1
    held = prod.app.test_client().get("/metrics", headers={"Authorization": f"Bearer {prod.settings['metrics_token']}"})
    assert re.search(r"^gateway_sms_held_by_budget_total [1-9]", held.get_data(as_text=True), re.M)


def test_attack_one_agencys_selesai_leaves_another_agencys_share_open(prod):
    ref = prod.report()
    prod.run_jobs()
    with prod.rt.db.session() as session:
        batch = outbox.Batch(prod.rt, session)
        dispatch.assign(prod.rt, batch, session.scalar(select(Report).where(Report.ref == ref)), "polda_ppa_ppo",
                        "re-routed")
    batch.enqueue()
    prod.run_jobs()
    prod.sms(OKI_DESK, f"SELESAI {ref}")
    prod.run_jobs()
    with prod.rt.db.session() as session:
        report = session.scalar(select(Report).where(Report.ref == ref))
        states = dict(session.execute(select(Assignment.agency_id, Assignment.state)).all())
    assert report.closed_at is None and states == {"polres_oki": "closed", "polda_ppa_ppo": "waiting"}


# -- 10. duty numbers in clear, a world-readable database ---------------------------------------------

def test_attack_the_database_file_shows_no_duty_number_and_is_private(prod):
    prod.report()
    prod.run_jobs()
    path = Path(prod.rt.db.url.database)
    assert path.stat().st_mode & 0o777 == 0o600
    with prod.rt.db.session() as session:
        tables = [row[0] for row in session.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
        dump = " ".join(str(row) for table in tables for row in session.execute(text(f"SELECT * FROM {table}")))
    for number in (OKI_DESK, POLDA_DESK, REPORTER):
        assert number[3:] not in dump  # without +62, in any stored form
    found = roster.listing(prod.rt, "polres_oki")
    assert [d.phone for d in found] == [OKI_DESK]


# -- 11. a reused sessionId ----------------------------------------------------------------------------

def test_attack_a_reused_session_id_never_returns_another_reporters_code(prod):
    first = prod.screen("ATUid_shared", WHOLE_PATH)
    ref = re.search(r"Kode: (\w{6})", first).group(1)
    second = prod.screen("ATUid_shared", WHOLE_PATH, number=OTHER)
    assert ref not in second
    assert prod.screen("ATUid_shared", WHOLE_PATH) == first  # the first reporter's retry keeps her code
