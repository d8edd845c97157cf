"""Staff accounts: argon2id password hashes, and a lock-out that makes guessing slow.

After MAX_FAILED_ATTEMPTS wrong passwords in a row an account is locked for LOCKOUT_SECONDS,
whoever tries; a correct password while locked is refused too, so the lock cannot be probed.
An unknown login costs the same hash verification as a known one, so timing does not tell
which logins exist."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update

from ..errors import ConfigError
from ..store.models import Staff

log = logging.getLogger(__name__)

ROLES = ("agency_staff", "coordinator", "operator")
MAX_FAILED_ATTEMPTS = 5
LOCKOUT_SECONDS = 15 * 60
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class Account:
    """What a request needs to know about the signed-in staff member (no hash)."""

    id: int
    login: str
    name: str
    role: str
    agency_id: Optional[str]

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


def _account(staff: Staff) -> Account:
    return Account(staff.id, staff.login, staff.name, staff.role, staff.agency_id)


def _utc(moment: Optional[datetime]) -> Optional[datetime]:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def add(runtime, login: str, name: str, role: str, password: str, agency_id: Optional[str] = None) -> Account:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (role == "agency_staff") != bool(agency_id):
        raise ConfigError("agency staff need --agency, and only agency staff have one")
    if agency_id and agency_id not in {a.id for a in runtime.content.directory.agencies}:
        raise ConfigError(f"unknown agency {agency_id!r}; see config/agencies.yaml")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    with runtime.db.session() as session:
        if session.scalar(select(Staff).where(Staff.login == login)) is not None:
            raise ConfigError(f"login {login!r} is taken (removed accounts keep theirs, for the audit trail)")
        staff = Staff(login=login, name=name, role=role, agency_id=agency_id, password_hash=_hasher.hash(password),
                      active=True, failed_attempts=0)
        session.add(staff)
        session.flush()
        return _account(staff)


def listing(runtime) -> list[tuple[Account, Optional[datetime]]]:
    """Active accounts with the end of their lock-out, if any."""
    with runtime.db.session() as session:
        rows = session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.id))
        return [(_account(s), _utc(s.locked_until)) for s in rows]


def remove(runtime, login: str) -> bool:
    with runtime.db.session() as session:
        staff = session.scalar(select(Staff).where(Staff.login == login, Staff.active.is_(True)))
        if staff is None:
            return False
        staff.active = False  # its sessions end at their next request
        return True


def active(runtime, staff_id: int) -> Optional[Account]:
    with runtime.db.session() as session:
        staff = session.get(Staff, staff_id)
        return _account(staff) if staff is not None and staff.active else None


def sign_in(runtime, login: str, password: str, now: Optional[datetime] = None) -> Optional[Account]:
    """The account when the password is right and the account not locked; else None."""
    now = now or datetime.now(timezone.utc)
    with runtime.db.session() as session:
        staff = session.scalar(select(Staff).where(Staff.login == login, Staff.active.is_(True)))
        if staff is None:
            _verify(_DUMMY_HASH, password)
            return None
        locked = staff.locked_until is not None and _utc(staff.locked_until) > now
        if _verify(staff.password_hash, password) and not locked:
            staff.failed_attempts, staff.locked_until, staff.last_login_at = 0, None, now
            if _hasher.check_needs_rehash(staff.password_hash):
                staff.password_hash = _hasher.hash(password)
            return _account(staff)
        if not locked:
            _count_failure(session, staff, now)
        return None


def _count_failure(session, staff: Staff, now: datetime) -> None:
    """Counted in the database, not in Python, so parallel guesses cannot overwrite each other's count."""
    failures = session.execute(update(Staff).where(Staff.id == staff.id)
                               .values(failed_attempts=Staff.failed_attempts + 1)
                               .returning(Staff.failed_attempts)).scalar_one()
    if failures >= MAX_FAILED_ATTEMPTS:
        session.execute(update(Staff).where(Staff.id == staff.id)
                        .values(failed_attempts=0, locked_until=now + timedelta(seconds=LOCKOUT_SECONDS)))
        log.warning("console account %s locked after %d failed sign-ins", staff.id, MAX_FAILED_ATTEMPTS)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
