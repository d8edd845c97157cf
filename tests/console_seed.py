"""Cases for console tests, written straight into the database (report, assignment, alert),
as the router would leave them: fast, and exact about which agency holds which case."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from gateway.cases import roster
from gateway.console import accounts
from gateway.store.models import Assignment, Message, Report

PASSWORD = "correct horse battery"
OKI_REPORTER = "+6281298765432"
OKU_REPORTER = "+6281311112222"
OKI_WORDS = "Adik saya dijanjikan kerja di Malaysia, agen di Kayuagung"
OKU_WORDS = "Penampungan rahasia di Baturaja, Bu Siti"


@dataclass(frozen=True)
class Seeded:
    oki_ref: str = "KQ2MXA"
    oku_ref: str = "ZT7PWB"


def _report(session, runtime, ref, region, agency_id, responder, phone, words, contact_ok, urgent, age):
    vault, now = runtime.vault, datetime.now(timezone.utc)
    report = Report(ref=ref, channel="ussd", category="job_fraud", victim="woman", region_code=region, urgent=urgent,
                    contact_ok=contact_ok, reporter_phone_enc=vault.encrypt(phone),
                    reporter_index=vault.blind_index(phone), details_enc=vault.encrypt(words), lang="id",
                    status="routed", created_at=now - age, routed_at=now - age)
    session.add(report)
    session.flush()
    session.add(Assignment(report_id=report.id, agency_id=agency_id, reason="area", state="waiting",
                           deadline_at=now + timedelta(minutes=15)))
    session.add(Message(report_id=report.id, responder_id=responder.id, purpose="alert", state="delivered",
                        to_enc=vault.encrypt(responder.phone), to_index=vault.blind_index(responder.phone),
                        body_enc=vault.encrypt(f"TPPO {ref}"), delivery_status="Success"))


def seed_cases(runtime) -> Seeded:
    """Case OKI (reporter may be contacted, urgent) for Polres OKI; case OKU (no contact) for Polres OKU."""
    oki = roster.add(runtime, "polres_oki", "Piket PPA OKI", "+6281277776666")
    oku = roster.add(runtime, "polres_oku", "Piket PPA OKU", "+6281277775555")
    roster.add(runtime, "polda_ppa_ppo", "Piket Polda", "+6281277770000")
    seeded = Seeded()
    with runtime.db.session() as session:
        _report(session, runtime, seeded.oki_ref, "16.02", "polres_oki", oki, OKI_REPORTER, OKI_WORDS, True, True,
                timedelta(hours=2))
        _report(session, runtime, seeded.oku_ref, "16.01", "polres_oku", oku, OKU_REPORTER, OKU_WORDS, False, False,
                timedelta(days=10))
    return seeded


def add_staff(runtime, login: str, role: str, agency_id: str = None) -> accounts.Account:
    return accounts.add(runtime, login, login.title(), role, PASSWORD, agency_id)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, login: str, password: str = PASSWORD, **request):
    token = csrf_of(client.get("/console/sign-in", **request).get_data(as_text=True))
    return client.post("/console/sign-in", data={"login": login, "password": password, "csrf_token": token},
                       **request)


def page_token(client, path: str, **request) -> str:
    return csrf_of(client.get(path, **request).get_data(as_text=True))
