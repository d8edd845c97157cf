"""Responders: the duty numbers that receive alerts, registered per agency by an operator."""
from __future__ import annotations

import phonenumbers
from sqlalchemy import func, select

from .errors import ConfigError
from .phones import normalise
from .store.models import Responder

# The demo roster gives every agency one fictitious desk so a local run alerts somewhere
# visible. Numbers extend libphonenumber's own example number for Indonesia; they are used
# only while SMS go to the local sink or the sandbox (Settings.demo_roster_allowed).
DEMO_BASE = phonenumbers.format_number(
    phonenumbers.example_number_for_type("ID", phonenumbers.PhoneNumberType.MOBILE),
    phonenumbers.PhoneNumberFormat.E164)


def demo_number(index: int) -> str:
    return f"{DEMO_BASE}{index:02d}"


def add(runtime, agency_id: str, name: str, phone: str, demo: bool = False) -> Responder:
    directory = runtime.content.directory
    if agency_id not in {a.id for a in directory.agencies}:
        raise ConfigError(f"unknown agency {agency_id!r}; see config/agencies.yaml")
    number = normalise(phone)
    if number is None:
        raise ConfigError(f"{phone!r} is not a valid phone number")
    with runtime.db.session() as session:
        existing = session.scalar(select(Responder).where(Responder.agency_id == agency_id, Responder.phone == number))
        if existing:
            existing.active, existing.name = True, name
            return existing
        responder = Responder(agency_id=agency_id, name=name, phone=number, active=True, demo=demo)
        session.add(responder)
        return responder


def remove(runtime, responder_id: int) -> bool:
    with runtime.db.session() as session:
        responder = session.get(Responder, responder_id)
        if responder is None:
            return False
        responder.active = False  # kept for the audit trail of alerts already sent to it
        return True


def listing(runtime, agency_id: str = None) -> list[Responder]:
    with runtime.db.session() as session:
        query = select(Responder).where(Responder.active.is_(True)).order_by(Responder.agency_id, Responder.id)
        if agency_id:
            query = query.where(Responder.agency_id == agency_id)
        return list(session.scalars(query))


def load_demo(runtime) -> int:
    if not runtime.settings.demo_roster_allowed:
        raise ConfigError("the demo roster is refused with a live Africa's Talking account or in production: "
                          "register real duty numbers with `flask --app gateway responders add`")
    agencies = runtime.content.directory.agencies
    for i, agency in enumerate(agencies, 1):
        add(runtime, agency.id, f"Demo {agency.short}", demo_number(i), demo=True)
    return len(agencies)



def production_problems(runtime) -> list[str]:
    """Production alerts real people, so it needs real duty numbers and no demo desk."""
    with runtime.db.session() as session:
        count = lambda demo: session.scalar(select(func.count()).select_from(Responder)  # noqa: E731
                                            .where(Responder.active.is_(True), Responder.demo.is_(demo)))
        real, demo = count(False), count(True)
    problems = []
    if not real:
        problems.append("GATEWAY_ENV=production needs a real responder roster: "
                        "register duty numbers with `flask --app gateway responders add`")
    if demo:
        problems.append(f"{demo} demo responders are still active: remove them with "
                        "`flask --app gateway responders remove ID` before going live")
    return problems
