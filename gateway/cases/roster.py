"""Responders: the duty numbers that receive alerts, registered per agency by an operator.

Numbers are stored encrypted and found by blind index (gateway.crypto), as every other number;
callers get `Duty` views with the number decrypted, never the row."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import phonenumbers
from sqlalchemy import func, select

from gateway.errors import ConfigError
from gateway.phones import normalise
from gateway.store.models import Responder

if TYPE_CHECKING:
    from gateway.runtime import Runtime

# The demo roster gives every agency one fictitious desk so a local run alerts somewhere
# visible. Numbers extend libphonenumber's own example number for Indonesia; they are used
# only while SMS go to the local sink or the sandbox (Settings.demo_roster_allowed).
DEMO_BASE = phonenumbers.format_number(
    phonenumbers.example_number_for_type("ID", phonenumbers.PhoneNumberType.MOBILE),
    phonenumbers.PhoneNumberFormat.E164)


def demo_number(index: int) -> str:
    return f"{DEMO_BASE}{index:02d}"


@dataclass(frozen=True)
class Duty:
    """A responder as an operator sees it: the row's fields with the number decrypted."""

    id: int
    agency_id: str
    name: str
    phone: str
    active: bool
    demo: bool
    alert_channel: str = "sms"


def _duty(vault, responder: Responder) -> Duty:
    return Duty(responder.id, responder.agency_id, responder.name, vault.decrypt(responder.phone_enc),
                responder.active, responder.demo, responder.alert_channel or "sms")


ALERT_CHANNELS = ("sms", "wa")  # how a duty number gets its alerts: SMS, or WhatsApp with SMS as its fallback


def add(runtime: Runtime, agency_id: str, name: str, phone: str, demo: bool = False,
        alert_channel: str = "sms") -> Duty:
    directory, vault = runtime.content.directory, runtime.vault
    if agency_id not in {a.id for a in directory.agencies}:
        raise ConfigError(f"unknown agency {agency_id!r}; see config/agencies.yaml")
    if alert_channel not in ALERT_CHANNELS:
        raise ConfigError(f"alert channel must be one of {', '.join(ALERT_CHANNELS)}, not {alert_channel!r}")
    number = normalise(phone)
    if number is None:
        raise ConfigError(f"{phone!r} is not a valid phone number")
    with runtime.db.session() as session:
        existing = session.scalar(select(Responder).where(Responder.agency_id == agency_id,
                                                          Responder.phone_index.in_(vault.blind_indexes(number))))
        if existing:
            existing.active, existing.name, existing.alert_channel = True, name, alert_channel
            return _duty(vault, existing)
        responder = Responder(agency_id=agency_id, name=name, phone_enc=vault.encrypt(number),
                              phone_index=vault.blind_index(number), active=True, demo=demo,
                              alert_channel=alert_channel)
        session.add(responder)
        session.flush()
        return _duty(vault, responder)


def remove(runtime: Runtime, responder_id: int) -> bool:
    with runtime.db.session() as session:
        responder = session.get(Responder, responder_id)
        if responder is None:
            return False
        responder.active = False  # kept for the audit trail of alerts already sent to it
        return True


def listing(runtime: Runtime, agency_id: Optional[str] = None, inactive: bool = False) -> list[Duty]:
    """Active duty numbers by agency; with `inactive`, the deactivated ones too, after them."""
    with runtime.db.session() as session:
        query = select(Responder).order_by(Responder.agency_id, Responder.active.desc(), Responder.id)
        if not inactive:
            query = query.where(Responder.active.is_(True))
        if agency_id:
            query = query.where(Responder.agency_id == agency_id)
        return [_duty(runtime.vault, r) for r in session.scalars(query)]


def load_demo(runtime: Runtime) -> int:
    if not runtime.settings.demo_roster_allowed:
        raise ConfigError("the demo roster is refused with a live Africa's Talking account or in production: "
                          "register real duty numbers with `flask --app gateway responders add`")
    agencies = runtime.content.directory.agencies
    for i, agency in enumerate(agencies, 1):
        add(runtime, agency.id, f"Demo {agency.short}", demo_number(i), demo=True)
    return len(agencies)



def production_problems(runtime: Runtime) -> list[str]:
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
