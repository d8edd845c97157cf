"""Tables. Personal fields (`*_enc`) hold Fernet tokens from gateway.crypto, never clear text;
`*_index` columns hold the blind index used to look a number up."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.store.states import AssignmentState, BroadcastState, MessageState, ReportStatus


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(8), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    # One report per channel session: an aggregator retrying the final hop gets the same code.
    session_key: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    # Null only while an SMS report waits for a follow-up answer (status `incomplete`); a
    # region still unknown when the report is filed sends it to the province-level units.
    category: Mapped[Optional[str]] = mapped_column(String(32))
    victim: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[Optional[str]] = mapped_column(String(8))
    place: Mapped[Optional[str]] = mapped_column(String(64))  # within the region, as an SMS named it: kec. Belitang
    urgent: Mapped[bool] = mapped_column(Boolean)
    contact_ok: Mapped[bool] = mapped_column(Boolean)
    reporter_phone_enc: Mapped[Optional[str]] = mapped_column(Text)
    reporter_index: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    details_enc: Mapped[Optional[str]] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(8), default="id")
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.RECEIVED)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)  # filed by a registered volunteer
    follow_ups: Mapped[int] = mapped_column(Integer, default=0)  # questions an SMS report was asked
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    routed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[Optional[int]] = mapped_column(ForeignKey("responders.id"))
    closed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class Outbox(Base):
    """A job the database owes to the queue. Written in the same transaction as the thing it
    concerns, so a job Redis lost can be enqueued again by the reconciler."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("job", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    enqueued_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), index=True)
    not_before: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))  # a scheduled job's time
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(String(200))


class Responder(Base):
    """A duty number of an agency (staff phones, so kept out of the public config), encrypted
    and looked up by blind index like every other number: a responder's phone is personal data,
    and a leaked table must not give a trafficker the police duty phones."""

    __tablename__ = "responders"
    __table_args__ = (UniqueConstraint("agency_id", "phone_index", name="uq_responders_agency_phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # `sms`, or `wa`: alerts by WhatsApp, with SMS when WhatsApp fails or no template fits.
    alert_channel: Mapped[str] = mapped_column(String(8), default="sms", server_default="sms")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Message(Base):
    """Every outgoing SMS, written before it is sent; `state` moves queued -> sending -> sent
    -> delivered, or to failed/rejected, by compare-and-set so no SMS is sent twice."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("report_id", "responder_id", "purpose"),
                      UniqueConstraint("broadcast_id", "to_index", name="uq_messages_broadcast_to"))

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[Optional[int]] = mapped_column(ForeignKey("reports.id"), index=True)
    responder_id: Mapped[Optional[int]] = mapped_column(ForeignKey("responders.id"))
    # The SMS this one answers: at most one reply per incoming message, however often it is handled.
    inbound_id: Mapped[Optional[int]] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    # Null: SMS. `wa`: WhatsApp, moved to null when the SMS fallback sends it instead.
    channel: Mapped[Optional[str]] = mapped_column(String(8))
    to_enc: Mapped[str] = mapped_column(Text)
    to_index: Mapped[str] = mapped_column(String(64), index=True)
    body_enc: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=MessageState.QUEUED, index=True)
    provider: Mapped[Optional[str]] = mapped_column(String(32))
    provider_message_id: Mapped[Optional[str]] = mapped_column(String(128), unique=True)  # a wamid is long
    status_code: Mapped[Optional[int]] = mapped_column(Integer)
    failure_reason: Mapped[Optional[str]] = mapped_column(String(64))
    delivery_status: Mapped[Optional[str]] = mapped_column(String(32))  # the provider's last report
    broadcast_id: Mapped[Optional[int]] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """Who did what to a report, when: routing decisions, alerts, acknowledgements."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    report_id: Mapped[Optional[int]] = mapped_column(ForeignKey("reports.id"), index=True)
    detail: Mapped[Optional[str]] = mapped_column(String(500))


class InboundMessage(Base):
    """An SMS received, stored before it is answered. `provider_id` is unique: the aggregator
    retries a callback it did not see answered, and the retry must change nothing."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(100), unique=True)
    sender_enc: Mapped[str] = mapped_column(Text)
    sender_index: Mapped[str] = mapped_column(String(64), index=True)
    text_enc: Mapped[str] = mapped_column(Text)
    kind: Mapped[Optional[str]] = mapped_column(String(16))  # null: text; else a chat app's image, location ...
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    handled_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[Optional[str]] = mapped_column(String(32))  # the command, never the text


class Contact(Base):
    """What a number asked of us, by blind index only: its language and whether it said STOP."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    phone_enc: Mapped[Optional[str]] = mapped_column(Text)  # only so a key rotation can re-index it
    lang: Mapped[Optional[str]] = mapped_column(String(8))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    help_sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    subscribed_region: Mapped[Optional[str]] = mapped_column(String(8), index=True)  # IKUT <area>: opted in


class Assignment(Base):
    """One agency's duty to acknowledge one report. `waiting` until a duty responder texts
    TERIMA (`acknowledged`) or the deadline passes (`escalated`: a new assignment one level up,
    `parent_id` pointing back; `unanswered` at the top). Both moves are compare-and-sets on
    `state`, so an acknowledgement racing the deadline check has exactly one outcome."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("report_id", "agency_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    agency_id: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("assignments.id"))
    reason: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=AssignmentState.WAITING)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[Optional[int]] = mapped_column(ForeignKey("responders.id"))


class Staff(Base):
    """A console account. `role` decides what it sees: agency_staff (its agency's cases only),
    coordinator (every case and the overview), operator (responders and service health, never
    a report's content). Kept, inactive, when removed: audit rows name it as `staff:<id>`."""

    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("login", name="uq_staff_login"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    agency_id: Mapped[Optional[str]] = mapped_column(String(64))  # agency_staff only
    password_hash: Mapped[str] = mapped_column(String(200))       # argon2id, never the password
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Every session cookie carries the generation it was signed in under; signing out or removing
    # the account moves it on, so a copied cookie stops working at once, not when it expires.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_login_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    # The console's language for this person (id or en), kept across devices and sign-ins.
    lang: Mapped[str] = mapped_column(String(8), default="id", server_default="id")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # made by `staff demo` for a local run, its password printed in the terminal: production refuses it
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class Note(Base):
    """A staff member's note on a case, encrypted like the report it concerns."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", name="fk_notes_report_id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", name="fk_notes_staff_id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    body_enc: Mapped[str] = mapped_column(Text)


class Volunteer(Base):
    """A member of a village volunteer team (tim relawan), registered by an operator. Their
    reports are marked trusted; removal takes every privilege away at once."""

    __tablename__ = "volunteers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str] = mapped_column(String(8))
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    phone_enc: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Broadcast(Base):
    """An awareness message for the opted-in residents of one kabupaten/kota, sent at `send_at`.
    Each copy is a Message row (unique per broadcast and number), so it goes out once each."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_code: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(String(160))  # public text: not personal data
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default=BroadcastState.SCHEDULED)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
