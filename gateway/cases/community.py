"""Community reach: village volunteers (tim relawan) and opt-in awareness broadcasts.

Volunteers are registered by an operator; their reports are marked trusted (still
confidential, routed the same way) and removal takes that away at once. Residents opt in per
kabupaten/kota with `IKUT <area>`; a broadcast goes only to them, at most BROADCAST_PER_SECOND
so the provider's pace holds, never to a number that said STOP (send_sms checks at send time),
and never to anyone merely because they once reported."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Optional

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from flows.gsm import is_gsm7, septets
from gateway.cases import dispatch
from gateway.errors import ConfigError, EffectFailed
from gateway.messaging import outbox
from gateway.phones import normalise
from gateway.store.models import Broadcast, Contact, Volunteer
from gateway.store.states import BroadcastState

if TYPE_CHECKING:
    from gateway.runtime import Runtime

BROADCAST_PER_SECOND = 5
SMS_LIMIT = 160


def region_code(runtime: Runtime, name_or_code: str) -> str:
    """A kabupaten/kota by code (16.02) or by any of its names (OKI, Kayuagung)."""
    codes = {r.code for r in runtime.content.directory.regions}
    if name_or_code in codes:
        return name_or_code
    mention = runtime.content.reader.place(name_or_code)
    code = mention.place.region if mention else None
    if code is None:
        raise ConfigError(f"unknown kabupaten/kota {name_or_code!r}; see config/regions.yaml")
    return code


def add_volunteer(runtime: Runtime, name: str, region: str, phone: str) -> Volunteer:
    number = normalise(phone)
    if number is None:
        raise ConfigError(f"{phone!r} is not a valid phone number")
    vault, code = runtime.vault, region_code(runtime, region)
    with runtime.db.session() as session:
        existing = session.scalar(select(Volunteer).where(Volunteer.phone_index.in_(vault.blind_indexes(number))))
        if existing:
            existing.name, existing.region_code, existing.active = name, code, True
            return existing
        volunteer = Volunteer(name=name, region_code=code, phone_index=vault.blind_index(number),
                              phone_enc=vault.encrypt(number), active=True)
        session.add(volunteer)
        return volunteer


def remove_volunteer(runtime: Runtime, volunteer_id: int) -> bool:
    with runtime.db.session() as session:
        return bool(session.execute(update(Volunteer).where(Volunteer.id == volunteer_id, Volunteer.active.is_(True))
                                    .values(active=False)).rowcount)


def volunteers(runtime: Runtime) -> list[Volunteer]:
    with runtime.db.session() as session:
        return list(session.scalars(select(Volunteer).where(Volunteer.active.is_(True)).order_by(Volunteer.id)))


def active_volunteer(session, indexes: list[str]) -> Optional[Volunteer]:
    return session.scalar(select(Volunteer).where(Volunteer.phone_index.in_(indexes), Volunteer.active.is_(True)))


def subscribe(runtime: Runtime, phone: Optional[str], code: str) -> None:
    """A USSD caller's opt-in (`IKUT` does the same by SMS); EffectFailed when it cannot be kept."""
    if phone is None:
        raise EffectFailed("the caller's number could not be read")
    try:
        with runtime.db.session() as session:
            contact_for(session, runtime.vault, phone).subscribed_region = code
    except SQLAlchemyError as exc:
        raise EffectFailed(type(exc).__name__) from None


def contact_for(session, vault, phone: str) -> Contact:
    """The number's contact row (language, STOP, opt-in), created on first use."""
    contact = session.scalar(select(Contact).where(Contact.phone_index.in_(vault.blind_indexes(phone))))
    if contact is None:
        contact = Contact(phone_index=vault.blind_index(phone), phone_enc=vault.encrypt(phone), opted_out=False)
        session.add(contact)
        session.flush()
    return contact


def broadcast_text(body: str) -> str:
    """The text as it goes out (spaces folded), or ConfigError when it is not one GSM-7 SMS."""
    body = " ".join(body.split())
    if not body or not is_gsm7(body) or septets(body) > SMS_LIMIT:
        raise ConfigError(f"a broadcast is one GSM-7 SMS of at most {SMS_LIMIT} characters")
    return body


def audience(runtime: Runtime, region: str) -> tuple[str, int]:
    """The area's code and how many numbers would get a broadcast now: opted in, not stopped."""
    code = region_code(runtime, region)
    with runtime.db.session() as session:
        return code, session.scalar(select(func.count()).select_from(Contact).where(
            Contact.subscribed_region == code, Contact.opted_out.is_(False), Contact.phone_enc.is_not(None)))


def schedule_broadcast(runtime: Runtime, region: str, body: str, send_at: Optional[datetime] = None) -> Broadcast:
    body = broadcast_text(body)
    send_at = (send_at or datetime.now(timezone.utc)).astimezone(timezone.utc)  # SQLite keeps no zone: store UTC
    with runtime.db.session() as session:
        broadcast = Broadcast(region_code=region_code(runtime, region), body=body, send_at=send_at,
                              state=BroadcastState.SCHEDULED)
        session.add(broadcast)
        session.flush()
        batch = outbox.Batch(runtime, session)
        batch.add("send_broadcast", broadcast.id, send_at)
    batch.enqueue()
    return broadcast


def send_broadcast(runtime: Runtime, broadcast_id: int) -> str:
    """Queue one SMS per opted-in number of the area, spaced to the provider's pace; claimed by
    a compare-and-set on the broadcast's state, so running it twice sends nothing twice."""
    vault = runtime.vault
    with runtime.db.session() as session:
        batch = outbox.Batch(runtime, session)
        outbox.mark_done(session, "send_broadcast", broadcast_id)
        if not session.execute(update(Broadcast).where(Broadcast.id == broadcast_id,
                                                       Broadcast.state == BroadcastState.SCHEDULED)
                               .values(state=BroadcastState.SENT)).rowcount:
            return "already sent"
        broadcast = session.get(Broadcast, broadcast_id)
        audience = session.scalars(select(Contact).where(Contact.subscribed_region == broadcast.region_code,
                                                         Contact.opted_out.is_(False),
                                                         Contact.phone_enc.is_not(None)).order_by(Contact.id))
        start = datetime.now(timezone.utc)
        count = 0
        for count, contact in enumerate(audience, 1):
            dispatch.queue_sms(runtime, batch, vault.decrypt(contact.phone_enc), broadcast.body, "awareness",
                               not_before=start + timedelta(seconds=count / BROADCAST_PER_SECOND),
                               broadcast_id=broadcast_id)
        broadcast.recipients = count
    batch.enqueue()
    return f"{count} messages queued"
