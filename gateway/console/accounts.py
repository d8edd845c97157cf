"""Staff accounts: argon2id password hashes, and limits that make guessing slow without letting
anyone lock another person out.

- Per source address: after FAILED_SIGN_INS_PER_ADDRESS.count wrong sign-ins (any login) in its
  window, an address is refused before any password is checked (429).
- Per account and address: after MAX_FAILED_ATTEMPTS wrong passwords in a row from one address,
  the account is locked for LOCKOUT_SECONDS for that address only; a correct password from there
  is refused too, so the lock cannot be probed. The same account still signs in from elsewhere:
  a lock-out counted per account alone let anyone lock any account, forever, by repeating five
  guesses every quarter of an hour.

Both are counted in Redis, where the address's limit lives, with the other abuse limits. They
need the real caller's address: behind a reverse proxy PROXY_HOPS must be set, or every caller
shares the proxy's. Redis trouble lets sign-ins through unthrottled, as for every limit.
An unknown login costs the same hash verification as a known one, so timing does not tell
which logins exist."""
from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.exceptions import RedisError
from sqlalchemy import select, update

from gateway.errors import ConfigError
from gateway.limits import Limit
from gateway.store.models import Staff

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

ROLES = ("agency_staff", "coordinator", "operator")
LANGUAGES = ("id", "en")  # the console's, Indonesian first
MAX_FAILED_ATTEMPTS = 5     # wrong passwords in a row for one account from one address
LOCKOUT_SECONDS = 15 * 60   # then that account is locked for that address this long
FAILED_SIGN_INS_PER_ADDRESS = Limit("sign-in-failed", 20, 15 * 60)  # any login, per source address
MIN_PASSWORD_LENGTH = 10
FAILURES_KEY = "signin:fail:{}:{}"  # staff id, address: wrong passwords in a row

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
    generation: int = 0  # of its sessions: a cookie signed in under another one is void
    lang: str = "id"     # the console's language for this person

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


def _account(staff: Staff) -> Account:
    return Account(staff.id, staff.login, staff.name, staff.role, staff.agency_id, staff.session_generation or 0,
                   staff.lang or "id")


class Throttled(Exception):
    """Too many wrong sign-ins from this address: refused before any password is checked."""


def add(runtime: Runtime, login: str, name: str, role: str, password: str, agency_id: Optional[str] = None,
        lang: str = "id") -> Account:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (role == "agency_staff") != bool(agency_id):
        raise ConfigError("agency staff need --agency, and only agency staff have one")
    if agency_id and agency_id not in {a.id for a in runtime.content.directory.agencies}:
        raise ConfigError(f"unknown agency {agency_id!r}; see config/agencies.yaml")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if lang not in LANGUAGES:
        raise ConfigError(f"lang must be one of {', '.join(LANGUAGES)}, not {lang!r}")
    with runtime.db.session() as session:
        if session.scalar(select(Staff).where(Staff.login == login)) is not None:
            raise ConfigError(f"login {login!r} is taken (removed accounts keep theirs, for the audit trail)")
        staff = Staff(login=login, name=name, role=role, agency_id=agency_id, password_hash=_hasher.hash(password),
                      active=True, lang=lang)
        session.add(staff)
        session.flush()
        return _account(staff)


def listing(runtime: Runtime) -> list[tuple[Account, int]]:
    """Active accounts, each with the number of addresses it is locked out for now."""
    locks: dict[int, int] = {}
    try:
        for key in runtime.redis.scan_iter(match=FAILURES_KEY.format("*", "*"), count=500):
            staff_id = key.decode().split(":")[2]
            if staff_id.isdigit() and int(runtime.redis.get(key) or 0) >= MAX_FAILED_ATTEMPTS:
                locks[int(staff_id)] = locks.get(int(staff_id), 0) + 1
    except RedisError:
        pass
    with runtime.db.session() as session:
        rows = session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.id))
        return [(_account(s), locks.get(s.id, 0)) for s in rows]


def remove(runtime: Runtime, login: str) -> bool:
    with runtime.db.session() as session:
        staff = session.scalar(select(Staff).where(Staff.login == login, Staff.active.is_(True)))
        if staff is None:
            return False
        staff.active = False  # its sessions end at their next request
        staff.session_generation = Staff.session_generation + 1
        return True


# `staff demo`: one account per kind of console user a newcomer needs to see, for a local run.
# The agency is the one the demo case (bin/run) is routed to, so its account has a case to open.
# Names are in Indonesian, the console's first language: they show in `Dilihat oleh` and the timeline.
DEMO_ACCOUNTS = (("demo-coordinator", "Demo koordinator", "coordinator", None),
                 ("demo-oki", "Demo Polres OKI", "agency_staff", "polres_oki"),
                 ("demo-operator", "Demo operator", "operator", None))
# Letters and digits only: a printed password is copied by a double-click, which stops at `-`.
DEMO_PASSWORD_LETTERS = string.ascii_letters + string.digits
DEMO_PASSWORD_LENGTH = 14


def load_demo(runtime: Runtime) -> list[tuple[Account, str]]:
    """The demo accounts, each with a password made now. A new one at every call, as nothing in
    the console changes a password: one printed in an earlier run (a scrolled terminal, a
    `tee` log) opens nothing after a restart. A login taken by a real or removed account is
    left alone. Refused where the demo roster is: production, or a live SMS account."""
    if not runtime.settings.demo_roster_allowed:
        raise ConfigError("demo accounts are refused with a live SMS account or in production: "
                          "create real ones with `flask --app gateway staff add`")
    made = []
    with runtime.db.session() as session:
        for login, name, role, agency_id in DEMO_ACCOUNTS:
            password = "".join(secrets.choice(DEMO_PASSWORD_LETTERS) for _ in range(DEMO_PASSWORD_LENGTH))
            staff = session.scalar(select(Staff).where(Staff.login == login))
            if staff is None:
                staff = Staff(login=login, name=name, role=role, agency_id=agency_id, active=True, demo=True)
                session.add(staff)
            elif not (staff.demo and staff.active):
                continue
            staff.name = name  # a demo account made before a rename takes the new name
            staff.password_hash = _hasher.hash(password)
            session.flush()
            made.append((_account(staff), password))
    return made


def production_problems(runtime: Runtime) -> list[str]:
    """A demo account's password was printed in a terminal: production must not open with one."""
    with runtime.db.session() as session:
        logins = session.scalars(select(Staff.login).where(Staff.demo.is_(True), Staff.active.is_(True))).all()
    return [f"demo console accounts are still active ({', '.join(logins)}): remove them with "
            "`flask --app gateway staff remove LOGIN` before going live"] if logins else []


def set_language(runtime: Runtime, staff_id: int, lang: str) -> bool:
    """Keep the console's language with the account, so it follows the person to any phone."""
    if lang not in LANGUAGES:
        return False
    with runtime.db.session() as session:
        session.execute(update(Staff).where(Staff.id == staff_id).values(lang=lang))
    return True


def end_sessions(runtime: Runtime, staff_id: int) -> None:
    """Void every session cookie the account signed in with, here and on any other device: the
    server, not the browser, decides that a session is over."""
    with runtime.db.session() as session:
        session.execute(update(Staff).where(Staff.id == staff_id)
                        .values(session_generation=Staff.session_generation + 1))


def active(runtime: Runtime, staff_id: int) -> Optional[Account]:
    with runtime.db.session() as session:
        staff = session.get(Staff, staff_id)
        return _account(staff) if staff is not None and staff.active else None


def sign_in(runtime: Runtime, login: str, password: str, address: str) -> Optional[Account]:
    """The account when the password is right and the account not locked for `address`; else
    None. Raises Throttled, before any check, once the address has failed too often."""
    limiter = runtime.limiter
    if limiter.used_up(FAILED_SIGN_INS_PER_ADDRESS, address):
        raise Throttled(address)
    with runtime.db.session() as session:
        staff = session.scalar(select(Staff).where(Staff.login == login, Staff.active.is_(True)))
        if staff is None:
            _verify(_DUMMY_HASH, password)
            limiter.hit(FAILED_SIGN_INS_PER_ADDRESS, address)
            return None
        failures = FAILURES_KEY.format(staff.id, address)
        locked = _failures(runtime, failures) >= MAX_FAILED_ATTEMPTS
        if _verify(staff.password_hash, password) and not locked:
            staff.last_login_at = datetime.now(timezone.utc)
            if _hasher.check_needs_rehash(staff.password_hash):
                staff.password_hash = _hasher.hash(password)
            _forget(runtime, failures)
            return _account(staff)
        limiter.hit(FAILED_SIGN_INS_PER_ADDRESS, address)
        if not locked:
            _count_failure(runtime, failures, staff.id)
        return None


def _failures(runtime: Runtime, key: str) -> int:
    try:
        return int(runtime.redis.get(key) or 0)
    except RedisError:
        return 0


def _forget(runtime: Runtime, key: str) -> None:
    try:
        runtime.redis.delete(key)
    except RedisError:
        pass


def _count_failure(runtime: Runtime, key: str, staff_id: int) -> None:
    """One more wrong password in a row from this address; each one starts the lock-out's clock
    again, so it ends LOCKOUT_SECONDS after the last counted guess. Counted in Redis, not in
    Python, so parallel guesses cannot overwrite each other's count."""
    try:
        with runtime.redis.pipeline() as pipe:
            failures = pipe.incr(key).expire(key, LOCKOUT_SECONDS).execute()[0]
    except RedisError:
        return
    if failures == MAX_FAILED_ATTEMPTS:
        log.warning("console account %s locked for one address after %d failed sign-ins", staff_id, failures)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
