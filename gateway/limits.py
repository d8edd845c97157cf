"""Abuse limits, counted in Redis per phone number (by blind index, never the number).

Limits are checked where the work is done and where refusing costs nothing already given: the
start of a USSD session (its first hop, whatever its text carries, never a hop inside one, so a
report under way always completes), the filing of a report itself (gateway.cases.reports), and an
incoming SMS. A number that cannot be read is counted under one key for its digits, so garbage
is limited like a number. Whoever is refused hears why, politely. Per source address there is
only the token check's limit: every genuine callback comes from the aggregator's few addresses,
so limiting those would silence everyone at once. Redis trouble lets everything through: a
limit must never cost a report."""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Optional

from redis import Redis
from redis.exceptions import RedisError

# A USSD session's first hop: count the session and keep the verdict for its later hops, in one
# round trip. KEYS: the session's verdict, the sessions counter, the reports counter.
# ARGV: the verdict's lifetime, the sessions limit, the sessions window, the reports limit, and
# for a hop that files a report, the reports window: a session let go on then also counts the
# report, as `hit` would ('c', or 'x' when that goes over the limit).
_SESSION_START = """
local verdict = redis.call('GET', KEYS[1])
if not verdict then
  local sessions = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  local reports = tonumber(redis.call('GET', KEYS[3]) or '0')
  verdict = '1'
  if sessions > tonumber(ARGV[2]) or reports >= tonumber(ARGV[4]) then verdict = '0' end
  redis.call('SET', KEYS[1], verdict, 'EX', ARGV[1])
end
if verdict == '0' or not ARGV[5] then return verdict end
local used = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[5])
if used > tonumber(ARGV[4]) then return 'x' end
return 'c'
"""
# Take back one use, never below zero and never creating a counter without its expiry.
_GIVE_BACK = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
"""
_NOT_DIGITS = re.compile(r"\D")


def caller_key(vault, phone: Optional[str], raw: Optional[str]) -> str:
    """Who a caller is for the limits and the session key: the blind index of the E.164 number,
    or, for one that cannot be read, of its digits alone, so `not-a-number` and every other
    string without digits share one key, and reformatting the same digits changes nothing."""
    if phone:
        return vault.blind_index(phone)
    return vault.blind_index("unreadable:" + _NOT_DIGITS.sub("", raw or ""))

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_seconds: int


class Limiter:
    """Fixed windows: one counter per key and window, expiring with it."""

    def __init__(self, redis: Redis):
        self.redis = redis
        self._session_start = redis.register_script(_SESSION_START)  # loaded on first use
        self._give_back = redis.register_script(_GIVE_BACK)

    def _key(self, limit: Limit, who: str) -> str:
        return f"limit:{limit.name}:{who}:{int(time.time() // limit.window_seconds)}"

    def hit(self, limit: Limit, who: str) -> bool:
        """Count one use; False when it goes over the limit."""
        key = self._key(limit, who)
        try:
            with self.redis.pipeline() as pipe:
                replies = pipe.incr(key).expire(key, limit.window_seconds).execute()
        except RedisError:
            return True
        return replies[0] <= limit.count

    def give_back(self, limit: Limit, who: str) -> None:
        """Undo a `hit` whose work was not done (refused, or a retry of work already done)."""
        try:
            self._give_back(keys=[self._key(limit, who)])
        except RedisError:
            pass

    def session_verdict_and_report(self, sessions: Limit, reports: Limit, who: str, session: str, ttl: int,
                                   files_report: bool) -> tuple[Optional[bool], Optional[bool]]:
        """Whether the session `session` of `who` may go on. Its first hop counts a new session
        and is refused when that goes over `sessions` or `reports` is already used up; the
        verdict is kept for `ttl` seconds, so every later hop of the session, whatever its text,
        gets the same answer without counting again (the USSD service keeps the verdict it was
        given, gateway.intake.ussd). None when Redis could not be asked: let through, and not a
        verdict anyone may keep. For a hop that `files_report`, in the same round trip, what
        `hit(reports, who)` would have answered when the session may go on (None: not counted)."""
        args = [ttl, sessions.count, sessions.window_seconds, reports.count]
        try:
            verdict = self._session_start(
                keys=[f"session:{session}:{who}", self._key(sessions, who), self._key(reports, who)],
                args=args + [reports.window_seconds] if files_report else args)
        except RedisError:
            return None, None
        if verdict in (b"c", b"x"):
            return True, verdict == b"c"
        return verdict == b"1", None

    def used_up(self, limit: Limit, who: str) -> bool:
        """Whether the window is already full, without counting a use."""
        try:
            return int(self.redis.get(self._key(limit, who)) or 0) >= limit.count
        except RedisError:
            return False

    def first_refusal(self, limit: Limit, who: str) -> bool:
        """True once per window: the one time a refused sender is told why."""
        try:
            return bool(self.redis.set(f"{self._key(limit, who)}:told", 1, nx=True, ex=limit.window_seconds))
        except RedisError:
            return False


def per_number(settings) -> dict[str, Limit]:
    return {"ussd": Limit("ussd", int(settings.limit_ussd_sessions_per_hour), 3600),
            "reports": Limit("reports", int(settings.limit_reports_per_day), 86400),
            "sms": Limit("sms", int(settings.limit_sms_per_hour), 3600)}


HELD_BY_BUDGET_KEY = "metrics:sms:held"  # SMS the send budget held back, counted for /metrics


def send_budget(settings) -> Limit:
    """Outgoing SMS per minute across every number (counted under one key, `all`)."""
    return Limit("sms-sent", int(settings.limit_sms_sent_per_minute), 60)
