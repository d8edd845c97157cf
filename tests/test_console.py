"""The staff console through Flask's test client: sign-in (argon2, cookie flags, CSRF, lock-out),
what each role may see, the case page and its actions, the overview's SVG charts, and the
`staff` commands. Cases are seeded straight into the database (tests/console_seed.py)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import click
import pytest
from argon2 import PasswordHasher
from console_seed import (
    OKI_REPORTER,
    OKI_WORDS,
    OKU_REPORTER,
    OKU_WORDS,
    PASSWORD,
    add_staff,
    page_token,
    seed_cases,
    sign_in,
)
from production import production_settings
from sqlalchemy import func, select

from gateway import create_app
from gateway.cases import dispatch, roster
from gateway.console import accounts, stats
from gateway.errors import ConfigError
from gateway.messaging import outbox
from gateway.store.models import Assignment, AuditEvent, Message, Note, Outbox, Report, Responder, Staff

PRODUCTION_HASHER = accounts._hasher


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """Still argon2id, with the smallest cost: the production cost (about 0.1 s a hash, on
    purpose) would make this module several times slower. Tests that need it put it back."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def seeded(runtime):
    return seed_cases(runtime)


@pytest.fixture
def staff(runtime):
    return {"oki": add_staff(runtime, "oki", "agency_staff", "polres_oki"),
            "oku": add_staff(runtime, "oku", "agency_staff", "polres_oku"),
            "coordinator": add_staff(runtime, "coordinator", "coordinator"),
            "operator": add_staff(runtime, "operator", "operator")}


def signed_in(app, login: str):
    client = app.test_client()
    response = sign_in(client, login)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def act(client, ref: str, action: str, **form):
    token = page_token(client, f"/console/cases/{ref}")
    return client.post(f"/console/cases/{ref}/{action}", data={"csrf_token": token, **form}, follow_redirects=True)


def audit_rows(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def report(runtime, ref: str) -> Report:
    with runtime.db.session() as session:
        return session.scalar(select(Report).where(Report.ref == ref))


# -- sign-in --------------------------------------------------------------------------------------

def test_passwords_are_stored_as_argon2id_hashes(runtime, monkeypatch):
    monkeypatch.setattr(accounts, "_hasher", PRODUCTION_HASHER)
    add_staff(runtime, "siti", "coordinator")
    add_staff(runtime, "rina", "operator")
    with runtime.db.session() as session:
        hashes = list(session.scalars(select(Staff.password_hash)))
    assert all(h.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and PASSWORD not in h for h in hashes)
    assert len(set(hashes)) == 2  # salted: the same password never gives the same hash


def test_a_weaker_hash_is_upgraded_at_the_next_sign_in(runtime, staff, monkeypatch):
    monkeypatch.setattr(accounts, "_hasher", PRODUCTION_HASHER)
    assert accounts.sign_in(runtime, "oki", PASSWORD, "127.0.0.1") is not None
    with runtime.db.session() as session:
        upgraded = session.scalar(select(Staff.password_hash).where(Staff.login == "oki"))
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert accounts.sign_in(runtime, "oki", PASSWORD, "127.0.0.1") is not None


def test_sign_in_opens_the_home_page_of_the_role(app, staff):
    homes = {"oki": "/console/cases", "coordinator": "/console/overview", "operator": "/console/responders"}
    for login, home in homes.items():
        response = sign_in(app.test_client(), login)
        assert response.status_code == 302 and response.headers["Location"] == home


def test_session_cookie_is_http_only_same_site_and_scoped_to_the_console(app, staff):
    response = sign_in(app.test_client(), "oki")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("tppo_console=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # development runs on plain http://127.0.0.1


def test_production_cookie_is_secure_and_pages_demand_https(settings_overrides, seeded, staff):
    settings = production_settings()
    app = create_app({**settings_overrides, **settings})
    try:
        client = app.test_client()
        token_page = client.get("/console/sign-in", base_url="https://console.example")
        assert "max-age=" in token_page.headers["Strict-Transport-Security"]
        response = client.post("/console/sign-in", base_url="https://console.example", data={
            "login": "oki", "password": PASSWORD,
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', token_page.get_data(as_text=True))[1]})
        assert response.status_code == 302
        assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
        assert app.secret_key == settings["secret_key"]
    finally:
        app.extensions["gateway"].runtime.db.dispose()


def test_development_signs_sessions_without_a_key_file(app, settings_overrides):
    assert not (settings_overrides["var_dir"] / "secret.key").exists()
    again = create_app(settings_overrides)  # another worker process signs alike
    try:
        assert again.secret_key == app.secret_key and len(app.secret_key) == 64
        assert settings_overrides["data_key"] not in app.secret_key
    finally:
        again.extensions["gateway"].runtime.db.dispose()


def test_wrong_password_and_unknown_login_get_the_same_answer(app, staff):
    client = app.test_client()
    wrong = sign_in(client, "oki", "not the password")
    unknown = sign_in(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_data(as_text=True) == unknown.get_data(as_text=True)  # same session, same token
    assert client.get("/console/cases").status_code == 302  # still signed out


def sign_in_from(app, address: str, login: str, password: str = PASSWORD):
    return sign_in(app.test_client(), login, password, environ_base={"REMOTE_ADDR": address})


def test_account_locks_for_one_address_after_repeated_failures_even_for_the_right_password(app, runtime, staff):
    for _ in range(accounts.MAX_FAILED_ATTEMPTS):
        assert sign_in_from(app, "198.51.100.7", "oki", "guess guess guess").status_code == 401
    refused = sign_in_from(app, "198.51.100.7", "oki")
    assert refused.status_code == 401 and "akun dikunci" in refused.get_data(as_text=True)
    listed = app.test_cli_runner().invoke(args=["staff", "list"])
    assert re.search(r"\toki\t.*\(locked for 1 address\)", listed.output)
    # the lock-out ends by itself, a quarter of an hour after the last guess counted
    key = accounts.FAILURES_KEY.format(staff["oki"].id, "198.51.100.7")
    assert 0 < runtime.redis.ttl(key) <= accounts.LOCKOUT_SECONDS
    runtime.redis.delete(key)
    assert sign_in_from(app, "198.51.100.7", "oki").status_code == 302


def test_nobody_can_lock_someone_else_out(app, runtime, staff):
    """Guesses from one address, however many, lock the account there only: its owner, elsewhere,
    signs in as ever."""
    for _ in range(3 * accounts.MAX_FAILED_ATTEMPTS):
        sign_in_from(app, "198.51.100.7", "oki", "guess guess guess")
    assert sign_in_from(app, "203.0.113.20", "oki").status_code == 302


def test_an_address_that_keeps_failing_is_throttled_before_any_check(app, runtime, staff, monkeypatch):
    limit = accounts.FAILED_SIGN_INS_PER_ADDRESS
    logins = ["oki", "oku", "coordinator", "operator", "nobody"]
    for n in range(limit.count):
        assert sign_in_from(app, "198.51.100.9", logins[n % len(logins)], "guess guess guess").status_code == 401
    checked = []
    monkeypatch.setattr(accounts, "_verify", lambda *a: checked.append(a) or True)
    throttled = sign_in_from(app, "198.51.100.9", "coordinator")
    assert throttled.status_code == 429 and "Terlalu banyak gagal masuk" in throttled.get_data(as_text=True)
    assert checked == []  # refused before any password was looked at
    assert sign_in_from(app, "203.0.113.20", "coordinator").status_code == 302  # other addresses are not


def test_a_success_resets_the_failure_count(runtime, staff):
    for _ in range(accounts.MAX_FAILED_ATTEMPTS - 1):
        assert accounts.sign_in(runtime, "oki", "guess guess guess", "198.51.100.7") is None
    assert accounts.sign_in(runtime, "oki", PASSWORD, "198.51.100.7") is not None
    for _ in range(accounts.MAX_FAILED_ATTEMPTS - 1):
        assert accounts.sign_in(runtime, "oki", "guess guess guess", "198.51.100.7") is None
    assert accounts.sign_in(runtime, "oki", PASSWORD, "198.51.100.7") is not None


def test_pages_ask_for_sign_in_and_come_back_after(app, seeded, staff):
    client = app.test_client()
    response = client.get("/console/cases/KQ2MXA")
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/sign-in?next=")
    token = page_token(client, "/console/sign-in")
    back = client.post("/console/sign-in", data={"login": "oki", "password": PASSWORD, "csrf_token": token,
                                                 "next": "/console/cases/KQ2MXA"})
    assert back.headers["Location"] == "/console/cases/KQ2MXA"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console/", "/at/ussd"])
def test_next_never_leaves_the_console(app, staff, target):
    client = app.test_client()
    token = page_token(client, "/console/sign-in")
    response = client.post("/console/sign-in", data={"login": "oki", "password": PASSWORD, "csrf_token": token,
                                                      "next": target})
    assert response.headers["Location"] == "/console/cases"


@pytest.mark.parametrize("target", ["/console/cases\r\nSet-Cookie: x=1", "/console/cases\n", "/console/\\evil.example",
                                    "/console/cases\x00", "/console/ cases", "/console/../at/ussd"])
def test_an_unsafe_next_gives_a_safe_redirect(app, staff, target):
    client = app.test_client()
    token = page_token(client, "/console/sign-in")
    response = client.post("/console/sign-in", data={"login": "oki", "password": PASSWORD, "csrf_token": token,
                                                      "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/console/cases"
    page = client.get("/console/sign-in?next=" + target.replace("\r", "%0D").replace("\n", "%0A"))
    assert page.status_code == 200 and "Set-Cookie: x" not in page.get_data(as_text=True)


def test_head_with_a_form_does_not_sign_in(app, staff):
    """HEAD is a safe method, so CSRF does not check it: it must never act like the POST."""
    client = app.test_client()
    page_token(client, "/console/sign-in")
    response = client.open("/console/sign-in", method="HEAD", data={"login": "oki", "password": PASSWORD})
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert client.get("/console/cases").status_code == 302  # still signed out


def test_sign_out_ends_the_session(app, staff):
    client = signed_in(app, "coordinator")
    token = page_token(client, "/console/overview")
    client.post("/console/sign-out", data={"csrf_token": token})
    assert client.get("/console/overview").status_code == 302


def copy_of_cookie(app, client):
    """Another browser holding the same session cookie, as one copied off a shared phone would be."""
    copy = app.test_client()
    copy.set_cookie("tppo_console", client.get_cookie("tppo_console", path="/console").value, path="/console")
    return copy


def test_a_cookie_copied_before_sign_out_opens_nothing_after(app, runtime, seeded, staff):
    client = signed_in(app, "oki")
    copy = copy_of_cookie(app, client)
    token = page_token(copy, f"/console/cases/{seeded.oki_ref}")  # the copy works while the session lives
    client.post("/console/sign-out", data={"csrf_token": page_token(client, "/console/cases")})
    assert copy.get(f"/console/cases/{seeded.oki_ref}").status_code == 302
    note = copy.post(f"/console/cases/{seeded.oki_ref}/note", data={"csrf_token": token, "note": "x"})
    assert note.status_code == 400 and not audit_rows(runtime, "noted")  # the session and its token are gone
    assert signed_in(app, "oki").get("/console/cases").status_code == 200  # signing in again works


def test_signing_out_ends_the_accounts_other_sessions_too(app, staff):
    phone, desk = signed_in(app, "coordinator"), signed_in(app, "coordinator")
    phone.post("/console/sign-out", data={"csrf_token": page_token(phone, "/console/overview")})
    assert desk.get("/console/overview").status_code == 302


def test_a_removed_account_loses_its_open_session_at_once(app, staff):
    client = signed_in(app, "oki")
    assert client.get("/console/cases").status_code == 200
    assert app.test_cli_runner().invoke(args=["staff", "remove", "oki"]).exit_code == 0
    assert client.get("/console/cases").status_code == 302


# -- CSRF ---------------------------------------------------------------------------------------------

def test_sign_in_without_csrf_token_is_refused(app, staff):
    client = app.test_client()
    client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={"login": "oki", "password": PASSWORD})
    assert response.status_code == 400 and "Isian sudah kedaluwarsa" in response.get_data(as_text=True)
    assert client.get("/console/cases").status_code == 302


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_case_actions_without_the_sessions_csrf_token_change_nothing(app, runtime, seeded, staff, token):
    client = signed_in(app, "oki")
    form = {"note": "ditelepon"} if token is None else {"note": "ditelepon", "csrf_token": token}
    for action in ("acknowledge", "note", "close"):
        assert client.post(f"/console/cases/{seeded.oki_ref}/{action}", data=form).status_code == 400
    assert report(runtime, seeded.oki_ref).status == "routed"
    assert not audit_rows(runtime, "acknowledged") and not audit_rows(runtime, "noted")


def test_another_sessions_token_is_refused(app, runtime, seeded, staff):
    mine, theirs = signed_in(app, "oki"), signed_in(app, "coordinator")
    their_token = page_token(theirs, "/console/cases")
    response = mine.post(f"/console/cases/{seeded.oki_ref}/acknowledge", data={"csrf_token": their_token})
    assert response.status_code == 400 and report(runtime, seeded.oki_ref).acknowledged_at is None


def test_the_token_changes_at_sign_in(app, staff):
    client = app.test_client()
    before = page_token(client, "/console/sign-in")
    client.post("/console/sign-in", data={"login": "oki", "password": PASSWORD, "csrf_token": before})
    assert page_token(client, "/console/cases") != before


# -- who sees what ----------------------------------------------------------------------------------

def test_agency_staff_list_only_their_agencys_cases(app, seeded, staff):
    oki = signed_in(app, "oki").get("/console/cases?status=").get_data(as_text=True)
    assert seeded.oki_ref in oki and seeded.oku_ref not in oki
    oku = signed_in(app, "oku").get("/console/cases").get_data(as_text=True)
    assert seeded.oku_ref in oku and seeded.oki_ref not in oku


def test_another_agencys_case_cannot_be_reached_by_editing_the_url(app, runtime, seeded, staff):
    client = signed_in(app, "oki")
    page = client.get(f"/console/cases/{seeded.oku_ref}")
    assert page.status_code == 404 and OKU_WORDS not in page.get_data(as_text=True)
    token = page_token(client, "/console/cases")
    for action in ("acknowledge", "note", "close", "reroute"):
        response = client.post(f"/console/cases/{seeded.oku_ref}/{action}",
                               data={"csrf_token": token, "note": "x", "agency": "polres_oki"})
        assert response.status_code == 404
    assert report(runtime, seeded.oku_ref).status == "routed"
    assert not [e for e in audit_rows(runtime, "viewed") if e.report_id == report(runtime, seeded.oku_ref).id]
    assert client.get("/console/cases/NOSUCH").status_code == 404  # the same answer as for a case that exists


def test_coordinator_sees_every_case(app, seeded, staff):
    client = signed_in(app, "coordinator")
    listing = client.get("/console/cases").get_data(as_text=True)
    assert seeded.oki_ref in listing and seeded.oku_ref in listing
    assert OKU_WORDS in client.get(f"/console/cases/{seeded.oku_ref}").get_data(as_text=True)


def test_operator_sees_no_report_content(app, runtime, seeded, staff):
    client = signed_in(app, "operator")
    for path in ("/console/cases", f"/console/cases/{seeded.oki_ref}", "/console/overview"):
        assert client.get(path).status_code == 404, path
    for path in ("/console/responders", "/console/service"):
        page = client.get(path)
        body = page.get_data(as_text=True)
        assert page.status_code == 200 and "Adik saya" not in body and "Baturaja, Bu Siti" not in body
        assert OKI_REPORTER not in body and seeded.oki_ref not in body
    assert not audit_rows(runtime, "viewed")


def test_agency_staff_reach_neither_overview_nor_roster(app, staff):
    client = signed_in(app, "oki")
    for path in ("/console/overview", "/console/responders", "/console/service"):
        assert client.get(path).status_code == 404, path


# -- the case page ----------------------------------------------------------------------------------

def test_case_page_shows_the_decrypted_report_its_alerts_and_timeline(app, seeded, staff):
    page = signed_in(app, "oki").get(f"/console/cases/{seeded.oki_ref}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert OKI_WORDS in body and OKI_REPORTER in body and "Darurat: ada yang dalam bahaya sekarang" in body
    assert "Dikirim ke piket Polres OKI (Piket PPA OKI) — <strong>sampai di HP</strong>" in body  # the alert's state
    assert "<dd>OKI</dd>" in body  # the kabupaten's one display name
    assert page.headers["Cache-Control"] == "no-store" and "script-src" not in page.headers["Content-Security-Policy"]
    assert "<script" not in body


def test_the_number_of_a_reporter_who_refused_contact_is_never_shown(app, seeded, staff):
    body = signed_in(app, "oku").get(f"/console/cases/{seeded.oku_ref}").get_data(as_text=True)
    assert OKU_WORDS in body and OKU_REPORTER not in body and "Pelapor minta tidak dihubungi" in body


def test_every_view_of_a_report_is_in_the_audit_trail(app, runtime, seeded, staff):
    signed_in(app, "oki").get(f"/console/cases/{seeded.oki_ref}")
    coordinator = signed_in(app, "coordinator")
    coordinator.get(f"/console/cases/{seeded.oki_ref}")
    views = audit_rows(runtime, "viewed")
    oki_id = report(runtime, seeded.oki_ref).id
    assert [(v.actor, v.report_id) for v in views] == [(f"staff:{staff['oki'].id}", oki_id),
                                                      (f"staff:{staff['coordinator'].id}", oki_id)]
    page = coordinator.get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    seen_by = page.split('id="seen-by"', 1)[1]
    assert "Oki (Polres OKI) — 1 kali, terakhir" in seen_by and "Coordinator (koordinator) — 2 kali" in seen_by
    assert seen_by.count("<li>") == 2  # one line per person, however often they looked


def test_listing_cases_shows_no_report_content(app, runtime, seeded, staff):
    body = signed_in(app, "coordinator").get("/console/cases").get_data(as_text=True)
    assert OKI_WORDS not in body and OKI_REPORTER not in body  # the list is not a view of content
    assert not audit_rows(runtime, "viewed")


def test_acknowledging_stops_the_escalation_and_appears_in_the_timeline(app, runtime, seeded, staff):
    client = signed_in(app, "oki")
    page = act(client, seeded.oki_ref, "acknowledge")
    body = page.get_data(as_text=True)
    assert "Diterima. Penerusan ke atas untuk instansi Anda dihentikan." in body
    timeline = body.split('id="timeline"', 1)[1]
    assert re.search(r"\d\d:\d\d WIB</span> — Oki \(Polres OKI\) menerima kasus untuk Polres OKI\.", timeline)
    assert "Terima untuk Polres OKI" not in body  # done: the button is gone
    acked = report(runtime, seeded.oki_ref)
    assert acked.status == "acknowledged" and acked.acknowledged_at is not None
    with runtime.db.session() as session:
        assignment = session.scalar(select(Assignment).where(Assignment.report_id == acked.id))
        feedback = session.scalar(select(Message).where(Message.report_id == acked.id,
                                                        Message.purpose == "feedback"))
        queued = session.scalar(select(Outbox).where(Outbox.job == "send_sms", Outbox.target_id == feedback.id))
    assert assignment.state == "acknowledged" and assignment.acknowledged_at is not None
    assert runtime.vault.decrypt(feedback.to_enc) == OKI_REPORTER and queued is not None
    again = act(client, seeded.oki_ref, "acknowledge").get_data(as_text=True)
    assert "kasus ini sudah diterima sebelumnya" in again
    assert len(audit_rows(runtime, "acknowledged")) == 1


def test_only_agency_staff_acknowledge(app, runtime, seeded, staff):
    body = act(signed_in(app, "coordinator"), seeded.oki_ref, "acknowledge").get_data(as_text=True)
    assert "Hanya petugas instansi itu sendiri yang menerima kasusnya." in body
    assert report(runtime, seeded.oki_ref).acknowledged_at is None


def test_a_note_is_kept_encrypted_and_shown_in_the_timeline(app, runtime, seeded, staff):
    client = signed_in(app, "oki")
    body = act(client, seeded.oki_ref, "note", note="Pelapor ditelepon, akan datang ke Polres").get_data(as_text=True)
    timeline = body.split('id="timeline"')[1]
    assert "Catatan ditambahkan." in body and "Pelapor ditelepon, akan datang ke Polres" in timeline
    assert timeline.count("Oki (Polres OKI) menambah catatan:") == 1  # shown once, with its words
    with runtime.db.session() as session:
        stored = session.scalar(select(Note))
    assert "Pelapor" not in stored.body_enc
    assert runtime.vault.decrypt(stored.body_enc) == "Pelapor ditelepon, akan datang ke Polres"
    assert [e.detail for e in audit_rows(runtime, "noted")] == [""]  # the words stay in the note


@pytest.mark.parametrize("note, answer", [("   ", "Catatan masih kosong."),
                                          ("x" * 2001, "paling banyak 2000 karakter")])
def test_bad_notes_are_refused_with_a_reason(app, runtime, seeded, staff, note, answer):
    page = act(signed_in(app, "oki"), seeded.oki_ref, "note", note=note)
    assert page.status_code == 200 and answer in page.get_data(as_text=True)
    assert not audit_rows(runtime, "noted")


def test_closing_a_case(app, runtime, seeded, staff):
    client = signed_in(app, "oki")
    assert "Kasus ditutup." in act(client, seeded.oki_ref, "close", confirm="yes").get_data(as_text=True)
    closed = report(runtime, seeded.oki_ref)
    assert closed.status == "closed" and closed.closed_at is not None
    assert [e.actor for e in audit_rows(runtime, "closed")] == [f"staff:{staff['oki'].id}"]
    with runtime.db.session() as session:
        assignment = session.scalar(select(Assignment).where(Assignment.report_id == closed.id))
        session.add(Outbox(job="check_ack", target_id=assignment.id))  # the deadline has come
        session.flush()
        assert dispatch.check(runtime, outbox.Batch(runtime, session), assignment.id) == "no escalation: closed"
    token = page_token(client, f"/console/cases/{seeded.oki_ref}")
    again = client.post(f"/console/cases/{seeded.oki_ref}/close", data={"csrf_token": token, "confirm": "yes"},
                        follow_redirects=True)
    assert "Kasus sudah ditutup" in again.get_data(as_text=True)


def test_agency_staff_close_their_agencys_part_only(app, runtime, seeded, staff):
    act(signed_in(app, "coordinator"), seeded.oki_ref, "reroute", agency="polres_oku", confirm="yes")
    oki = signed_in(app, "oki")
    body = act(oki, seeded.oki_ref, "close", confirm="yes").get_data(as_text=True)
    assert "Ditutup untuk instansi Anda. Kasus tetap terbuka sampai semua instansi" in body
    assert report(runtime, seeded.oki_ref).closed_at is None
    assert "sudah menutup bagiannya" in act(oki, seeded.oki_ref, "close", confirm="yes").get_data(as_text=True)
    closed = act(signed_in(app, "oku"), seeded.oki_ref, "close", confirm="yes")
    assert "Kasus ditutup." in closed.get_data(as_text=True)
    assert report(runtime, seeded.oki_ref).status == "closed"


def test_rerouting_alerts_the_other_agency_and_shows_it_the_case(app, runtime, seeded, staff):
    coordinator = signed_in(app, "coordinator")
    body = act(coordinator, seeded.oki_ref, "reroute", agency="polres_oku", confirm="yes").get_data(as_text=True)
    assert "Dialihkan: Polres OKU sudah diberi tahu." in body
    oki_id = report(runtime, seeded.oki_ref).id
    with runtime.db.session() as session:
        agencies = set(session.scalars(select(Assignment.agency_id).where(Assignment.report_id == oki_id)))
        alerted = list(session.execute(select(Responder.agency_id, Message.state).join(
            Responder, Responder.id == Message.responder_id).where(Message.report_id == oki_id,
                                                                   Message.purpose == "alert")))
        checks = session.scalars(select(Outbox.job).where(Outbox.job == "check_ack")).all()
    assert agencies == {"polres_oki", "polres_oku"}
    assert ("polres_oku", "queued") in alerted and len(checks) == 1  # one deadline check for the new assignment
    assert [e.detail for e in audit_rows(runtime, "rerouted")] == ["to polres_oku"]
    oku_page = signed_in(app, "oku").get(f"/console/cases/{seeded.oki_ref}")
    assert oku_page.status_code == 200 and OKI_WORDS in oku_page.get_data(as_text=True)
    again = act(coordinator, seeded.oki_ref, "reroute", agency="polres_oku", confirm="yes").get_data(as_text=True)
    assert "sudah memegang kasus ini" in again


@pytest.mark.parametrize("agency", ["", "polres_mars"])
def test_rerouting_to_an_unknown_agency_is_refused(app, runtime, seeded, staff, agency):
    for confirm in ("", "yes"):
        body = act(signed_in(app, "coordinator"), seeded.oki_ref, "reroute", agency=agency,
                   confirm=confirm).get_data(as_text=True)
        assert "Pilih instansi dari daftar." in body and not audit_rows(runtime, "rerouted")


def test_an_unknown_action_is_not_found(app, seeded, staff):
    client = signed_in(app, "oki")
    token = page_token(client, "/console/cases")
    assert client.post(f"/console/cases/{seeded.oki_ref}/delete", data={"csrf_token": token}).status_code == 404


# -- the case list ----------------------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ("", {"KQ2MXA", "ZT7PWB"}),
    ("region=16.02", {"KQ2MXA"}),
    ("region=16.01", {"ZT7PWB"}),
    ("urgent=yes", {"KQ2MXA"}),
    ("urgent=no", {"ZT7PWB"}),
    ("age=24h", {"KQ2MXA"}),
    ("age=over7d", {"ZT7PWB"}),
    ("status=open", {"KQ2MXA", "ZT7PWB"}),
    ("status=closed", set()),
    ("category=job_fraud", {"KQ2MXA", "ZT7PWB"}),
    ("category=bride", set()),
    ("status=routed&category=job_fraud&region=16.01", {"ZT7PWB"}),
    ("region=99.99&status=nonsense&age=forever&page=x", {"KQ2MXA", "ZT7PWB"}),  # stale or odd values are ignored
    ("page=99999999999999999999999", set()),  # beyond any list, but no error
])
def test_case_list_filters(app, seeded, staff, query, expected):
    page = signed_in(app, "coordinator").get(f"/console/cases?{query}")
    assert page.status_code == 200
    assert set(re.findall(r'/console/cases/([A-Z0-9]{6})"', page.get_data(as_text=True))) == expected


def test_case_list_pages(app, runtime, seeded, staff, monkeypatch):
    from gateway.console import cases

    monkeypatch.setattr(cases, "PAGE_SIZE", 1)
    client = signed_in(app, "coordinator")
    first = client.get("/console/cases").get_data(as_text=True)
    assert "KQ2MXA" in first and "ZT7PWB" not in first and "lebih lama" in first
    second = client.get("/console/cases?page=2").get_data(as_text=True)
    assert "ZT7PWB" in second and "KQ2MXA" not in second and "lebih baru" in second


# -- overview and service ---------------------------------------------------------------------------

def test_overview_draws_charts_with_html_labels(app, runtime, seeded, staff):
    act(signed_in(app, "oki"), seeded.oki_ref, "acknowledge")
    page = signed_in(app, "coordinator").get("/console/overview?days=30")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and body.count('<figure class="chart') == 3
    assert "<text" not in body  # labels are HTML, so they keep their size on a phone
    assert '<a href="/console/cases?region=16.02&amp;age=30d">OKI</a>' in body and "Laporan per kategori" in body
    assert "<script" not in body and not re.search(r'(src|href)="(https?:)?//', body)  # nothing from elsewhere
    assert "1</a></b>terbuka, belum diterima" in body.replace("\n", "")
    assert "separuh kasus diterima dalam waktu ini" in body and "9 dari 10 kasus diterima dalam waktu ini" in body
    assert "dihitung dari 1 kasus yang diterima dalam periode ini" in body
    assert OKI_WORDS not in body


def test_overview_with_no_reports_says_so(app, staff):
    body = signed_in(app, "coordinator").get("/console/overview?days=7").get_data(as_text=True)
    assert "belum ada data" in body and "Laporan per hari" in body


def test_overview_figures(runtime, seeded):
    now = datetime.now(timezone.utc)
    with runtime.db.session() as session:
        oki = session.scalar(select(Report).where(Report.ref == seeded.oki_ref))
        oki.acknowledged_at, oki.status = oki.created_at + timedelta(minutes=12), "acknowledged"
        failed = session.scalar(select(Message).where(Message.report_id == oki.id))
        failed.state = "failed"
    with runtime.db.session() as session:
        week, month = stats.overview(session, 7, now=now), stats.overview(session, 30, now=now)
    assert week.total == 1 and week.by_region == [("16.02", 1)]  # the OKU case is ten days old
    assert month.total == 2 and sorted(month.by_region) == [("16.01", 1), ("16.02", 1)]
    assert month.by_category == [("job_fraud", 2)]
    assert len(month.by_day) == 30 and sum(n for _, n in month.by_day) == 2
    assert month.ack_median_minutes == month.ack_p90_minutes == pytest.approx(12) and month.acknowledged == 1
    assert month.open_unacknowledged == 1  # the OKU case
    assert (month.alerts_failed, month.alerts_finished, month.failure_rate) == (1, 2, 0.5)


def test_reports_are_counted_on_their_day_in_wib(runtime):
    now = datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)  # 10:00 WIB
    with runtime.db.session() as session:
        session.add(Report(ref="WIB2AM", channel="sms", status="received", lang="id", category="other",
                           victim="woman", region_code="16.02", urgent=False, contact_ok=False,
                           created_at=datetime(2026, 11, 28, 18, 0, tzinfo=timezone.utc)))  # 01:00 WIB on the 29th
    with runtime.db.session() as session:
        figures = stats.overview(session, 7, now=now)
    assert figures.by_day[-1] == (date(2026, 11, 29), 1) and sum(n for _, n in figures.by_day) == 1


def test_percentile_is_an_observed_value():
    assert stats.percentile([], 50) is None
    assert stats.percentile([5.0], 90) == 5.0
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert stats.percentile(list(map(float, range(1, 11))), 90) == 9.0


def test_service_page_shows_the_queue_and_work_owed(app, runtime, seeded, staff):
    with runtime.db.session() as session:
        session.add(Outbox(job="route_report", target_id=report(runtime, seeded.oki_ref).id,
                           created_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    body = signed_in(app, "operator").get("/console/service").get_data(as_text=True)
    assert "tugas menunggu" in body and "route_report" in body


# -- operator: duty numbers ---------------------------------------------------------------------------

def test_operator_adds_and_deactivates_a_duty_number(app, runtime, staff):
    client = signed_in(app, "operator")
    token = page_token(client, "/console/responders")
    added = client.post("/console/responders", data={"csrf_token": token, "agency": "polres_oki",
                                                     "name": "Piket malam", "phone": "0812 9999 0000"},
                        follow_redirects=True)
    assert "ditambahkan ke Polres OKI." in added.get_data(as_text=True)
    with runtime.db.session() as session:
        responder = session.scalar(select(Responder).where(Responder.name == "Piket malam"))
    assert runtime.vault.decrypt(responder.phone_enc) == "+6281299990000" and responder.active
    assert responder.phone_index == runtime.vault.blind_index("+6281299990000")
    page = client.get("/console/responders").get_data(as_text=True)
    assert "+62 812-****-0000" in page and "81299990000" not in page  # masked, as volunteers are
    bad = client.post("/console/responders", data={"csrf_token": token, "agency": "polres_oki", "name": "X",
                                                   "phone": "12345"}, follow_redirects=True)
    assert bad.status_code == 200 and "Nomor HP tidak sah" in bad.get_data(as_text=True)
    unconfirmed = client.post(f"/console/responders/{responder.id}/deactivate", data={"csrf_token": token})
    assert unconfirmed.headers["Location"].endswith(f"/console/responders/{responder.id}/deactivate")
    confirm = client.get(f"/console/responders/{responder.id}/deactivate").get_data(as_text=True)
    assert "Hapus Piket malam dari Polres OKI?" in confirm and "+62 812-****-0000" in confirm
    assert 'name="confirm" value="yes"' in confirm.split("<form")[-1]
    with runtime.db.session() as session:
        assert session.get(Responder, responder.id).active is True  # nothing changes before the confirmation
    client.post(f"/console/responders/{responder.id}/deactivate", data={"csrf_token": token, "confirm": "yes"})
    with runtime.db.session() as session:
        assert session.get(Responder, responder.id).active is False
    assert [e.actor for e in audit_rows(runtime, "responder_added")] == [f"staff:{staff['operator'].id}"]
    assert len(audit_rows(runtime, "responder_removed")) == 1
    assert client.post("/console/responders/9999/deactivate", data={"csrf_token": token, "confirm": "yes"}
                       ).status_code == 404
    assert client.get("/console/responders/9999/deactivate").status_code == 404


def test_removing_an_agencys_last_duty_number_says_where_its_alerts_go(app, runtime, staff):
    client = signed_in(app, "operator")
    only = roster.add(runtime, "polres_oki", "Piket OKI", "+6281299990001")
    page = client.get(f"/console/responders/{only.id}/deactivate").get_data(as_text=True)
    assert "nomor piket aktif terakhir" in page and "Polda Sumsel" in page
    second = roster.add(runtime, "polres_oki", "Piket OKI 2", "+6281299990002")
    page = client.get(f"/console/responders/{second.id}/deactivate").get_data(as_text=True)
    assert "1 nomor piket lain" in page and "terakhir" not in page


# -- `flask --app gateway staff` ----------------------------------------------------------------------

def test_staff_add_list_remove(runner):
    added = runner.invoke(args=["staff", "add", "--login", "siti", "--name", "Siti", "--role", "agency_staff",
                                "--agency", "polres_oki"], env={"STAFF_PASSWORD": "a long enough password"})
    assert added.exit_code == 0, added.output
    assert re.match(r"staff \d+ \(siti, agency_staff\) added", added.output)
    assert "a long enough password" not in added.output
    listed = runner.invoke(args=["staff", "list"])
    assert re.search(r"^\d+\tsiti\tagency_staff\tpolres_oki\tSiti$", listed.output, re.M)
    assert runner.invoke(args=["staff", "remove", "siti"]).exit_code == 0
    assert "siti" not in runner.invoke(args=["staff", "list"]).output
    assert runner.invoke(args=["staff", "remove", "siti"]).exit_code != 0


def test_staff_add_prompts_for_the_password_twice(runner):
    added = runner.invoke(args=["staff", "add", "--login", "rina", "--name", "Rina", "--role", "coordinator"],
                          input="a long enough password\na long enough password\n")
    assert added.exit_code == 0, added.output


@pytest.mark.parametrize("args, password, message", [
    (["--role", "agency_staff"], "a long enough password", "agency staff need --agency"),
    (["--role", "coordinator", "--agency", "polres_oki"], "a long enough password", "only agency staff have one"),
    (["--role", "agency_staff", "--agency", "polres_mars"], "a long enough password", "unknown agency"),
    (["--role", "operator"], "short", "at least 10 characters"),
])
def test_staff_add_refuses_bad_input(runner, args, password, message):
    result = runner.invoke(args=["staff", "add", "--login", "x", "--name", "X", *args],
                           env={"STAFF_PASSWORD": password})
    assert result.exit_code != 0 and message in result.output


def test_a_login_is_never_reused(runner, staff):
    result = runner.invoke(args=["staff", "add", "--login", "oki", "--name", "Other", "--role", "operator"],
                           env={"STAFF_PASSWORD": "a long enough password"})
    assert result.exit_code != 0 and "is taken" in result.output


def test_staff_demo_makes_both_accounts_with_a_new_password_each_time(app, runner, runtime):
    """`make run` prints these; a password from an earlier run must open nothing."""
    first = runner.invoke(args=["staff", "demo"])
    assert first.exit_code == 0, first.output
    passwords = dict(re.findall(r"^(demo-[\w-]+) +password (\S+)", first.output, re.M))
    assert set(passwords) == {login for login, *_ in accounts.DEMO_ACCOUNTS}
    assert sign_in(app.test_client(), "demo-oki", passwords["demo-oki"]).status_code == 302
    again = dict(re.findall(r"^(demo-[\w-]+) +password (\S+)", runner.invoke(args=["staff", "demo"]).output, re.M))
    assert set(again) == set(passwords) and not set(again.values()) & set(passwords.values())
    assert sign_in(app.test_client(), "demo-oki", passwords["demo-oki"]).status_code != 302
    assert [(a.login, a.name, a.role) for a, _ in accounts.listing(runtime)] == [
        ("demo-coordinator", "Demo koordinator", "coordinator"), ("demo-oki", "Demo Polres OKI", "agency_staff"),
        ("demo-operator", "Demo operator", "operator")]
    assert all(re.fullmatch(r"[A-Za-z0-9]{14}", p) for p in passwords.values())  # copied whole by a double-click


def test_staff_demo_leaves_a_real_account_of_that_login_alone(runner, runtime):
    accounts.add(runtime, "demo-oki", "Real person", "operator", PASSWORD)
    output = runner.invoke(args=["staff", "demo"]).output
    assert "demo-coordinator" in output and "demo-oki" not in output


def test_demo_accounts_are_refused_in_production_and_refuse_production(settings_overrides, runtime):
    with click.Context(click.Command("flask")):  # as the flask CLI builds it: no start-up guards
        operator = create_app({**settings_overrides, **production_settings()}).extensions["gateway"].runtime
    with pytest.raises(ConfigError, match="demo accounts are refused"):
        accounts.load_demo(operator)
    accounts.load_demo(runtime)
    roster.add(runtime, "polres_oki", "Piket PPA", "+6281234567890")
    with pytest.raises(ConfigError, match=r"demo console accounts are still active \(demo-coordinator"):
        create_app({**settings_overrides, **production_settings()})
    for login, *_ in accounts.DEMO_ACCOUNTS:
        accounts.remove(runtime, login)
    assert create_app({**settings_overrides, **production_settings()}).extensions["gateway"].runtime


# -- community reach (operator) -------------------------------------------------------------------

def community_post(client, path: str, **form):
    return client.post(path, data={"csrf_token": page_token(client, "/console/community"), **form},
                       follow_redirects=True)


def test_operator_registers_and_removes_volunteers_who_stay_masked(app, runtime, staff):
    from gateway.cases import community

    client = signed_in(app, "operator")
    added = community_post(client, "/console/community/volunteers", name="Bu Ani", region="16.02",
                           phone="0812 5555 4444")
    page = added.get_data(as_text=True)
    assert "Relawan 1 ditambahkan." in page and "Bu Ani" in page and "+62 812-****-4444" in page
    assert "81255554444" not in page.replace(" ", "").replace("-", "")
    assert [v.region_code for v in community.volunteers(runtime)] == ["16.02"]
    refused = community_post(client, "/console/community/volunteers", name="X", region="16.02", phone="12")
    assert "Nomor HP tidak sah" in refused.get_data(as_text=True)

    removed = community_post(client, "/console/community/volunteers/1/remove")
    assert "Relawan 1 dihapus" in removed.get_data(as_text=True) and community.volunteers(runtime) == []
    assert community_post(client, "/console/community/volunteers/1/remove").status_code == 404
    assert [r.actor for r in audit_rows(runtime, "volunteer_added")] == [staff["operator"].actor]
    assert len(audit_rows(runtime, "volunteer_removed")) == 1


def test_operator_schedules_a_broadcast_read_as_wib(app, runtime, staff):
    client = signed_in(app, "operator")
    preview = community_post(client, "/console/community/broadcasts", region="16.02",
                             body="Waspada  calo PMI ilegal.", send_at="2030-01-01T08:00").get_data(as_text=True)
    assert "Kirim SMS ini ke OKI?" in preview and "Waspada calo PMI ilegal." in preview  # the text as it goes out
    assert "1 Januari 2030 08:00 WIB" in preview and "belum ada yang ikut menerima" in preview
    form = preview.split("<form")[-1].split("</form>")[0]  # the yes carries what was checked
    assert all(field in form for field in ('name="region" value="16.02"', 'value="Waspada calo PMI ilegal."',
                                           'name="send_at" value="2030-01-01T08:00"', 'name="confirm" value="yes"'))
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Outbox)) == 0  # nothing before the yes
    page = community_post(client, "/console/community/broadcasts", region="16.02", body="Waspada calo PMI ilegal.",
                          send_at="2030-01-01T08:00", confirm="yes").get_data(as_text=True)
    assert "Siaran 1 dijadwalkan." in page and "1 Januari 2030 08:00 WIB" in page
    with runtime.db.session() as session:
        row = session.scalar(select(Outbox).where(Outbox.job == "send_broadcast"))
        assert row.not_before.replace(tzinfo=timezone.utc) == datetime(2030, 1, 1, 1, 0, tzinfo=timezone.utc)
    too_long = community_post(client, "/console/community/broadcasts", region="16.02", body="x" * 161)
    assert "satu SMS biasa" in too_long.get_data(as_text=True)
    bad_time = community_post(client, "/console/community/broadcasts", region="16.02", body="Waspada",
                              send_at="besok pagi")
    assert "Waktu kirim" in bad_time.get_data(as_text=True)


@pytest.mark.parametrize("login", ["oki", "coordinator"])
def test_only_operators_manage_the_community(app, staff, login):
    client = signed_in(app, login)
    assert client.get("/console/community").status_code in (403, 404)


# -- language -------------------------------------------------------------------------------------------

def test_the_console_is_in_indonesian_first_and_dates_have_indonesian_months(app, runtime, seeded, staff):
    client = signed_in(app, "oki")
    body = client.get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    assert '<html lang="id">' in body and "Kasus KQ2MXA" in body and "Dilihat oleh" in body
    month = ("Januari Februari Maret April Mei Juni Juli Agustus September Oktober November Desember").split()
    created = report(runtime, seeded.oki_ref).created_at.replace(tzinfo=timezone.utc)
    local = created.astimezone(timezone(timedelta(hours=7)))
    assert f"{local.day} {month[local.month - 1]} {local.year} {local:%H:%M} WIB" in body


def test_the_language_switch_is_kept_with_the_account(app, runtime, seeded, staff):
    client = signed_in(app, "oki")
    token = page_token(client, "/console/cases")
    switched = client.post("/console/language", data={"csrf_token": token, "lang": "en", "next": "/console/cases"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/console/cases"
    with runtime.db.session() as session:
        assert session.scalar(select(Staff.lang).where(Staff.login == "oki")) == "en"
    body = client.get("/console/cases").get_data(as_text=True)
    assert '<html lang="en">' in body and "Cases for Polres OKI" in body and "Bahasa Indonesia" in body
    # another phone, a fresh sign-in: the account's language, not the device's
    elsewhere = signed_in(app, "oki").get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    assert '<html lang="en">' in elsewhere and "Seen by" in elsewhere and "Urgent: someone in danger now" in elsewhere
    assert "Job scam" in elsewhere  # the category's name from config/messages/en.yaml
    assert client.post("/console/language", data={"csrf_token": token, "lang": "fr"}).status_code == 302
    with runtime.db.session() as session:
        assert session.scalar(select(Staff.lang).where(Staff.login == "oki")) == "en"


def test_the_sign_in_page_switches_language_before_anyone_signs_in(app):
    client = app.test_client()
    page = client.get("/console/sign-in").get_data(as_text=True)
    assert '<html lang="id">' in page and "Nama pengguna" in page and "Kata sandi" in page
    token = page_token(client, "/console/sign-in")
    client.post("/console/language", data={"csrf_token": token, "lang": "en", "next": "/console/sign-in"})
    page = client.get("/console/sign-in").get_data(as_text=True)
    assert '<html lang="en">' in page and ">Password</label>" in page


@pytest.mark.parametrize("path, code, title", [
    ("/console/no-such-page", 404, "Tidak ditemukan"),
    ("/console/cases/NOSUCH", 404, "Tidak ditemukan"),
    ("/console/responders", 404, "Tidak ditemukan"),  # another role's page
    ("/console/cases/KQ2MXA/delete", 405, "Tidak bisa di sini"),
])
def test_error_pages_are_in_the_staff_members_language(app, seeded, staff, path, code, title):
    page = signed_in(app, "oki").get(path)
    body = page.get_data(as_text=True)
    assert page.status_code == code and f"<h1>{title}</h1>" in body and '<html lang="id">' in body
    assert "Not Found" not in body and "Kembali ke konsol" in body


def test_an_unexpected_error_is_a_console_page(app, staff, monkeypatch):
    from gateway.console import views

    client = signed_in(app, "coordinator")
    monkeypatch.setattr(views.stats, "overview", lambda *a, **k: 1 / 0)
    page = client.get("/console/overview")
    assert page.status_code == 500 and "<h1>Terjadi kesalahan</h1>" in page.get_data(as_text=True)


def test_a_throttled_sign_in_is_a_console_page_in_indonesian(app, staff):
    limit = accounts.FAILED_SIGN_INS_PER_ADDRESS
    for _n in range(limit.count):
        sign_in_from(app, "198.51.100.44", "nobody", "guess guess guess")
    page = sign_in_from(app, "198.51.100.44", "oki")
    assert page.status_code == 429 and '<html lang="id">' in page.get_data(as_text=True)


# -- the case page, for action ------------------------------------------------------------------------

def add_audit(runtime, ref: str, action: str, detail: str, actor: str = "router") -> None:
    with runtime.db.session() as session:
        dispatch.audit(session, report(runtime, ref).id, action, detail, actor=actor)


def test_the_timeline_is_told_in_sentences_with_agency_names(app, runtime, seeded, staff):
    ref = seeded.oki_ref
    with runtime.db.session() as session:
        alert = session.scalar(select(Message).where(Message.report_id == report(runtime, ref).id))
        responder_id = alert.responder_id
    rows = [
        ("received", "", "ussd"),
        ("routed", "polres_oki: covers the area", "router"),
        ("routed", "uptd_ppa_oki: child victim (place given)", "router"),
        ("routed", "uptd_ppa_prov: uptd_ppa_oki off duty", "router"),
        ("place_given", "16.02", "sms"),
        ("no_responder", "uptd_ppa_oki has no duty number; alerting uptd_ppa_prov", "router"),
        ("alert_sent", f"message {alert.id}: Success", "sender"),
        ("alert_failed", f"message {alert.id}: Failed DeliveryFailure", "provider"),
        ("alert_next", f"polda_ppa_ppo: responder {responder_id} after message {alert.id} failed", "router"),
        ("escalated", "polres_oki -> polda_ppa_ppo: no acknowledgement", "router"),
        ("unanswered", "polda_ppa_ppo: no acknowledgement, nobody above", "router"),
        ("no_next_responder", "polda_ppa_ppo: every duty number up the chain was tried", "router"),
        ("unassigned", "no duty number in the chain of bp3mi_sumsel", "router"),
        ("send_released", f"message {alert.id}: its worker died mid-send; sent again", "reconciler"),
        ("feedback_sent", "message 99: Success", "sender"),
        ("acknowledged", "polres_oki", f"responder:{responder_id}"),
        ("rerouted", "to polres_oku", staff["coordinator"].actor),
        ("closed_for_agency", "polres_oki", staff["oki"].actor),
        ("closed", "coordinator", staff["coordinator"].actor),
        ("purged", "closed before 2026-01-01: numbers and text removed", "retention"),
    ]
    for action, detail, actor in rows:
        add_audit(runtime, ref, action, detail, actor)
    body = signed_in(app, "coordinator").get(f"/console/cases/{ref}").get_data(as_text=True)
    timeline = body.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    for sentence in [
        "Laporan masuk.",
        "Dikirim ke Polres OKI: wilayahnya.",
        "Dikirim ke UPTD PPA OKI: korbannya anak. (setelah pelapor menyebut tempatnya)",
        "Dikirim ke UPTD PPA Sumsel, karena UPTD PPA OKI sedang tutup.",
        "Pelapor menyebut tempatnya: OKI.",
        "UPTD PPA OKI belum punya nomor piket; UPTD PPA Sumsel yang diberi tahu.",
        "SMS peringatan ke Piket PPA OKI, Polres OKI terkirim ke jaringan SMS.",
        "SMS peringatan ke Piket PPA OKI, Polres OKI tidak sampai; nomor piket berikutnya dicoba.",
        "Peringatan tidak sampai; dikirim ulang ke Piket PPA OKI, Polda Sumsel PPA-PPO.",
        "Belum ada jawaban dari Polres OKI dalam 15 menit; diteruskan ke Polda Sumsel PPA-PPO.",
        "Belum ada jawaban dari Polda Sumsel PPA-PPO dalam 15 menit, dan tidak ada instansi di atasnya",
        "semua nomor piket dari Polda Sumsel PPA-PPO ke atas sudah dicoba.",
        "Belum ada nomor piket di BP3MI Sumsel maupun di atasnya",
        "SMS yang pengirimannya terputus dikirim ulang.",
        "SMS ke pelapor bahwa kasus sudah ditangani: terkirim.",
        "Piket PPA OKI (lewat SMS) menerima kasus untuk Polres OKI.",
        "Coordinator (koordinator) mengalihkan kasus ke Polres OKU.",
        "Oki (Polres OKI) menutup kasus untuk Polres OKI.",
        "Coordinator (koordinator) menutup kasus.",
        "Nomor dan kata-kata pelapor dihapus setelah masa simpan.",
    ]:
        assert sentence in timeline, sentence
    # no internals: agency ids, actor codes, message numbers or the fallback for unknown rows
    for internal in ("polres_", "uptd_ppa", "polda_", "router", "sender", "message ", "Dicatat oleh sistem",
                     "staff:", "responder:", "covers the area", "->"):
        assert internal not in timeline, internal
    assert re.search(r'<li><span class="when">\d\d:\d\d WIB</span> — Laporan masuk\.', timeline)


def test_urgency_and_a_volunteers_report_are_said_in_words(app, runtime, seeded, staff):
    with runtime.db.session() as session:
        session.scalar(select(Report).where(Report.ref == seeded.oki_ref)).trusted = True
    listing = signed_in(app, "coordinator").get("/console/cases").get_data(as_text=True)
    assert "Darurat: ada yang dalam bahaya sekarang" in listing and "Dari relawan terdaftar" in listing
    assert 'title="someone in danger">!' not in listing


def test_rerouting_asks_for_confirmation_first(app, runtime, seeded, staff):
    client = signed_in(app, "coordinator")
    case_page = client.get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    choice = case_page.split('name="agency"', 1)[1].split("</select>", 1)[0]
    assert '<option value="" selected>— pilih instansi —</option>' in choice  # nothing chosen by default
    assert '<optgroup label="Kepolisian">' in choice
    asked = act(client, seeded.oki_ref, "reroute", agency="polres_oku")
    body = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Alihkan kasus KQ2MXA ke Polres OKU?" in body
    assert "Ya, beri tahu Polres OKU" in body and 'name="confirm" value="yes"' in body
    assert not audit_rows(runtime, "rerouted")  # nothing happened yet
    oki_id = report(runtime, seeded.oki_ref).id
    with runtime.db.session() as session:
        assert not session.scalars(select(Assignment).where(Assignment.agency_id == "polres_oku",
                                                            Assignment.report_id == oki_id)).all()


def test_closing_asks_for_confirmation_and_says_what_it_closes(app, runtime, seeded, staff):
    """`Tutup` sits under `Terima` on a phone: one tap only asks, and says what closing means."""
    act(signed_in(app, "coordinator"), seeded.oki_ref, "reroute", agency="polres_oku", confirm="yes")
    oki = signed_in(app, "oki")
    case_page = oki.get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    assert case_page.index("Terima untuk Polres OKI") < case_page.index("Tambah catatan") < \
        case_page.index("Tutup untuk Polres OKI…")  # the close button is not right under Terima
    asked = act(oki, seeded.oki_ref, "close")
    body = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Tutup kasus KQ2MXA untuk Polres OKI?" in body
    reopened = oki.get(f"/console/cases/{seeded.oki_ref}/close")  # from the history: back to the case, nothing done
    assert reopened.status_code == 302 and reopened.headers["Location"].endswith(f"/console/cases/{seeded.oki_ref}")
    rerouting = oki.get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True).split('name="agency"')[1]
    assert 'value="polres_oku"' not in rerouting.split("</select>")[0]  # it has the case: not offered again
    assert 'value="polres_oki"' not in rerouting.split("</select>")[0]
    assert "Kasus tetap terbuka untuk: <strong>Polres OKU</strong>" in body
    assert "Belum ada yang menerima kasus ini." in body and "Pelapor tidak dikirimi apa pun." in body
    assert 'name="confirm" value="yes"' in body and "Ya, tutup" in body
    assert not audit_rows(runtime, "closed_for_agency") and report(runtime, seeded.oki_ref).closed_at is None
    with runtime.db.session() as session:
        assert session.scalar(select(Assignment).where(Assignment.agency_id == "polres_oki")).state == "waiting"
    # The last agency with a share: the whole case closes, and what was done is kept as a note.
    act(oki, seeded.oki_ref, "close", confirm="yes")
    oku = signed_in(app, "oku")
    assert "Seluruh kasus ditutup" in act(oku, seeded.oki_ref, "close").get_data(as_text=True)
    done = act(oku, seeded.oki_ref, "close", confirm="yes", note="Korban dijemput, dibawa ke UPTD").get_data(
        as_text=True)
    assert "Kasus ditutup." in done and "Korban dijemput, dibawa ke UPTD" in done.split('id="timeline"')[1]
    assert report(runtime, seeded.oki_ref).status == "closed"
    # Once closed, asking again says so instead of offering to close.
    again = act(oku, seeded.oki_ref, "close")
    assert "Kasus sudah ditutup" in again.get_data(as_text=True) and "Ya, tutup" not in again.get_data(as_text=True)


def test_a_coordinator_confirms_closing_the_whole_case(app, runtime, seeded, staff):
    client = signed_in(app, "coordinator")
    body = act(client, seeded.oki_ref, "close").get_data(as_text=True)
    assert "Tutup kasus KQ2MXA untuk semua instansi?" in body and "Instansi yang masih memegangnya: Polres OKI." in body
    assert report(runtime, seeded.oki_ref).closed_at is None
    too_long = act(client, seeded.oki_ref, "close", confirm="yes", note="x" * 2001).get_data(as_text=True)
    assert "paling banyak 2000 karakter" in too_long and report(runtime, seeded.oki_ref).closed_at is None
    assert "Kasus ditutup." in act(client, seeded.oki_ref, "close", confirm="yes").get_data(as_text=True)


def test_each_sms_of_a_case_is_named_by_whom_it_went_to(app, runtime, seeded, staff):
    """Case N862ZG: the reply to a duty responder's TERIMA was told as a second SMS to the reporter."""
    vault = runtime.vault
    with runtime.db.session() as session:
        oki = session.scalar(select(Report).where(Report.ref == seeded.oki_ref))
        to_reporter = Message(report_id=oki.id, purpose="reply", state="sent", to_enc=vault.encrypt(OKI_REPORTER),
                              to_index=vault.blind_index(OKI_REPORTER), body_enc=vault.encrypt("Kode"))
        to_duty = Message(report_id=oki.id, purpose="reply", state="sent", to_enc=vault.encrypt("+6281277776666"),
                          to_index=vault.blind_index("+6281277776666"), body_enc=vault.encrypt("Anda terima"))
        session.add_all([to_reporter, to_duty])
        session.flush()
        ids = to_reporter.id, to_duty.id
    add_audit(runtime, seeded.oki_ref, "reply_sent", f"message {ids[0]}: Success", "sender")
    add_audit(runtime, seeded.oki_ref, "reply_sent", f"message {ids[1]}: Success", "sender")
    add_audit(runtime, seeded.oki_ref, "reply_failed", "message 9999: Failed", "provider")
    body = signed_in(app, "coordinator").get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    timeline = body.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    assert timeline.count("ke pelapor") == 1 and "SMS balasan ke pelapor: terkirim." in timeline
    assert "SMS balasan ke nomor piket Piket PPA OKI, Polres OKI: terkirim." in timeline
    assert "SMS tentang kasus ini: tidak terkirim (gagal)." in timeline  # an SMS it cannot place is not guessed


def test_each_agency_line_shows_the_time_of_its_own_state(app, runtime, seeded, staff):
    """Closed at 21:20 after being acknowledged at 21:17: the line says both, each for what it is."""
    act(signed_in(app, "coordinator"), seeded.oki_ref, "reroute", agency="polres_oku", confirm="yes")
    oki = signed_in(app, "oki")
    act(oki, seeded.oki_ref, "acknowledge")
    act(oki, seeded.oki_ref, "close", confirm="yes")
    at = lambda minute: datetime(2026, 12, 3, 14, minute, tzinfo=timezone.utc)  # noqa: E731  (21:mm WIB)
    with runtime.db.session() as session:
        oki_id = session.scalar(select(Report.id).where(Report.ref == seeded.oki_ref))
        mine = session.scalar(select(Assignment).where(Assignment.report_id == oki_id,
                                                       Assignment.agency_id == "polres_oki"))
        mine.acknowledged_at = at(17)
        session.scalar(select(AuditEvent).where(AuditEvent.action == "closed_for_agency")).at = at(20)
    page = oki.get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    assert ("<strong>Polres OKI</strong> — ditutup 3 Desember 2026 21:20 WIB "
            "(diterima 3 Desember 2026 21:17 WIB)") in page
    assert re.search(r"<strong>Polres OKU</strong> — menunggu diterima, sampai \d", page)
    act(signed_in(app, "oku"), seeded.oki_ref, "close", confirm="yes")  # the last one closes the case
    with runtime.db.session() as session:
        session.get(Report, oki_id).closed_at = at(25)
    page = oki.get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    assert "<strong>Polres OKU</strong> — ditutup 3 Desember 2026 21:25 WIB (tidak pernah diterima)" in page
    assert "<strong>Polres OKI</strong> — ditutup 3 Desember 2026 21:20 WIB" in page


@pytest.mark.parametrize("channel, received, says", [
    ("ussd", "", "Pelapor minta tidak dihubungi"),
    ("at-sms", "report", "Lewat SMS: pelapor tidak ditanya apakah boleh dihubungi, jadi nomornya dirahasiakan."),
    ("8x8-sms", "report", "Lewat SMS: pelapor tidak ditanya apakah boleh dihubungi"),
    ("wa", "report", "Lewat WhatsApp: pelapor tidak ditanya apakah boleh dihubungi"),
    ("wa", "", "Pelapor minta tidak dihubungi"),  # WhatsApp's numbered menu asks, as USSD does
])
def test_the_contact_line_says_whether_the_reporter_was_asked(app, runtime, seeded, staff, channel, received, says):
    with runtime.db.session() as session:
        session.scalar(select(Report).where(Report.ref == seeded.oku_ref)).channel = channel
    add_audit(runtime, seeded.oku_ref, "received", received, channel)
    body = signed_in(app, "oku").get(f"/console/cases/{seeded.oku_ref}").get_data(as_text=True)
    contact = body.split('id="contact">', 1)[1].split("</dd>", 1)[0]
    assert says in contact and OKU_REPORTER not in body
    if "ditanya" in says:
        assert "minta" not in contact


def test_channels_have_plain_names():
    from gateway.channels.base import Channel
    from gateway.console.labels import Labels

    assert {c.value: Labels.channel(c.value) for c in Channel} == {
        "at-ussd": "USSD", "at-sms": "SMS", "8x8-sms": "SMS", "wa": "WhatsApp"}


def test_an_alert_handed_to_the_network_is_not_said_to_have_arrived(app, runtime, seeded, staff):
    with runtime.db.session() as session:
        session.scalar(select(Message).where(Message.purpose == "alert", Message.report_id == select(Report.id)
                                             .where(Report.ref == seeded.oki_ref).scalar_subquery())).state = "sent"
    body = signed_in(app, "oki").get(f"/console/cases/{seeded.oki_ref}").get_data(as_text=True)
    assert "<strong>terkirim ke jaringan, belum ada kabar sampai di HP</strong>" in body
    assert re.search(r'<span class="muted">per \d+ \w+ \d{4} \d\d:\d\d WIB', body)
    assert "laporan sampai" not in body


def region_choices(body: str) -> list[str]:
    select_ = body.split('name="region"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="[^"]+"[^>]*>([^<]+)</option>', select_)


def test_the_area_filter_is_alphabetical_and_an_agencys_own(app, runtime, seeded, staff):
    add_staff(runtime, "polda", "agency_staff", "polda_ppa_ppo")
    everything = region_choices(signed_in(app, "coordinator").get("/console/cases").get_data(as_text=True))
    assert len(everything) == 17 and everything == sorted(everything, key=str.lower)
    assert region_choices(signed_in(app, "polda").get("/console/cases").get_data(as_text=True)) == everything
    oki = signed_in(app, "oki")
    assert region_choices(oki.get("/console/cases").get_data(as_text=True)) == ["OKI"]
    # A link naming another area keeps it chosen.
    assert region_choices(oki.get("/console/cases?region=16.01").get_data(as_text=True)) == ["OKI", "OKU"]


def test_one_display_name_per_region_on_every_page(app, runtime, seeded, staff):
    """Kota Lubuk Linggau is `Lubuklinggau` in the case list's filter, the case page and the charts."""
    with runtime.db.session() as session:
        session.scalar(select(Report).where(Report.ref == seeded.oku_ref)).region_code = "16.73"
    client = signed_in(app, "coordinator")
    pages = [client.get(p).get_data(as_text=True) for p in
             ("/console/cases", f"/console/cases/{seeded.oku_ref}", "/console/overview?days=30")]
    for body in pages:
        assert "Lubuk Linggau" not in body and "Kota Lubuk" not in body
    assert all("Lubuklinggau" in body for body in pages)


# -- the task force: map and export ---------------------------------------------------------------------

def test_the_overview_map_has_the_17_areas_each_linking_to_its_cases(app, seeded, staff):
    body = signed_in(app, "coordinator").get("/console/overview?days=30").get_data(as_text=True)
    tiles = re.findall(r'<a class="tile level-(\d) col-\d row-\d" href="([^"]+)"><span class="tile-name">([^<]+)'
                       r'</span><b>(\d+)</b>', body)
    assert len(tiles) == 17 and len({name for _l, _h, name, _n in tiles}) == 17
    by_name = {name.replace("\u00ad", ""): (level, href, n) for level, href, name, n in tiles}
    assert by_name["OKI"] == ("1", "/console/cases?region=16.02&amp;age=30d", "1")
    assert by_name["Lubuklinggau"][2] == "0"
    assert by_name["Palembang"][0] == "0" and by_name["Palembang"][2] == "0"


def export_rows(client, query: str = "") -> list[list[str]]:
    import csv
    import io

    response = client.get(f"/console/export.csv{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))


def add_reports(runtime, n: int, region: str, category: str, status: str, victim: str = "woman") -> None:
    with runtime.db.session() as session:
        for i in range(n):
            session.add(Report(ref=f"{region[-2:]}{category[:2].upper()}{status[:1].upper()}{i}", channel="ussd",
                               status=status, lang="id", category=category, victim=victim, region_code=region,
                               urgent=False, contact_ok=False))


def test_the_export_gives_monthly_counts_with_small_ones_hidden(app, runtime, seeded, staff):
    add_reports(runtime, 4, "16.71", "forced_labour", "closed")
    rows = export_rows(signed_in(app, "coordinator"), "?months=3")
    assert rows[0] == ["Bulan", "Kabupaten/kota", "Kategori", "Kelompok korban", "Hasil", "Jumlah laporan"]
    month = datetime.now(timezone(timedelta(hours=7))).strftime("%Y-%m")
    assert [month, "Palembang", "Kerja paksa", "Perempuan", "ditutup", "4"] in rows
    assert [month, "OKI", "Penipuan kerja", "Perempuan", "menunggu diterima", "<3"] in rows
    counts = [r[-1] for r in rows[1:]]
    assert all(c == "<3" or int(c) >= 3 for c in counts)
    text = "\n".join(",".join(r) for r in rows)
    for personal in (seeded.oki_ref, seeded.oku_ref, OKI_WORDS, OKI_REPORTER, "16.02", "job_fraud"):
        assert personal not in text
    exported = audit_rows(runtime, "exported")
    assert [(e.actor, e.report_id) for e in exported] == [(staff["coordinator"].actor, None)]
    assert "last 3 months" in exported[0].detail


def test_the_export_opens_in_indonesian_excel(app, runtime, seeded, staff):
    """Excel set to Indonesian splits at `;` (its list separator) and needs the BOM for UTF-8."""
    text = signed_in(app, "coordinator").get("/console/export.csv").get_data(as_text=True)
    assert text.startswith("\ufeffBulan;Kabupaten/kota;Kategori;Kelompok korban;Hasil;Jumlah laporan\r\n")
    assert not text.lower().lstrip("\ufeff").startswith("sep=")


def test_the_export_is_in_the_staff_members_language(app, runtime, seeded, staff):
    accounts.set_language(runtime, staff["coordinator"].id, "en")
    rows = export_rows(signed_in(app, "coordinator"))
    assert rows[0] == ["Month", "Kabupaten/kota", "Category", "Victim group", "Outcome", "Reports"]
    assert any(r[2] == "Job scam" and r[3] == "Woman" for r in rows[1:]), rows


def test_the_smallest_count_shown_is_three(runtime, seeded):
    from gateway.console import export

    assert [export.shown(n, 3) for n in (1, 2, 3, 10)] == ["<3", "<3", "3", "10"]
    assert export.first_month(datetime(2026, 1, 15, tzinfo=timezone.utc), 3) == (2025, 11)
    assert export.first_month(datetime(2026, 12, 31, 18, tzinfo=timezone.utc), 1) == (2027, 1)  # WIB is ahead


@pytest.mark.parametrize("login", ["oki", "operator"])
def test_only_coordinators_export_or_see_the_map(app, runtime, seeded, staff, login):
    client = signed_in(app, login)
    for path in ("/console/export.csv", "/console/export.csv?months=12", "/console/overview"):
        response = client.get(path)
        assert response.status_code == 404 and "text/csv" not in response.content_type, path
    assert not audit_rows(runtime, "exported")


# -- duty numbers by agency -------------------------------------------------------------------------------

def test_duty_numbers_are_grouped_by_agency_with_a_filter(app, runtime, seeded, staff):
    cards = lambda body: re.findall(r'<section class="card agency-group">\s*<h2>([^<]+) <span', body)  # noqa: E731
    client = signed_in(app, "operator")
    body = client.get("/console/responders").get_data(as_text=True)
    assert cards(body) == ["Polres OKU", "Polres OKI", "Polda Sumsel PPA-PPO"]  # in config order
    without = body.split('id="without-number"', 1)[1]
    assert f"({len(runtime.content.directory.agencies) - 3})" in without
    assert "<strong>UPTD PPA OKU</strong> — <span class=\"warn\">peringatannya dikirim ke UPTD PPA Sumsel" in without
    only = client.get("/console/responders?agency=polres_oki").get_data(as_text=True)
    assert cards(only) == ["Polres OKI"] and 'id="without-number"' not in only
    assert "Piket PPA OKI" in only and "Piket PPA OKU" not in only
    missing = client.get("/console/responders?show=none").get_data(as_text=True)
    assert cards(missing) == [] and "<strong>UPTD PPA OKI</strong>" in missing


def test_every_console_text_has_its_indonesian_translation():
    """A text added to a page without a translation would show English on an Indonesian page."""
    from pathlib import Path

    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    import gateway.console

    root = Path(gateway.console.__file__).parent
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = {entry[2] if isinstance(entry[2], str) else entry[2][0]
             for entry in extract_from_dir(root, method_map, keywords={"_": None, "_l": None, "gettext": None,
                                                                          "ngettext": (1, 2)})}
    with open(root / "translations" / "id" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale="id")
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string
                  and (m.string if isinstance(m.string, str) else m.string[0])}
    assert found - translated == set()
