"""Abuse limits, counted in Redis per phone number (by blind index, never the number).

Limits are checked where refusing costs nothing already given: a new USSD session (never a hop
inside one, so a report under way always completes) and an incoming SMS. Whoever is refused
hears why, politely, once. Per source address there is only the token check's limit: every
genuine callback comes from the aggregator's few addresses, so limiting those would silence
everyone at once. Redis trouble lets everything through: a limit must never cost a report."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Optional

from redis import Redis
from redis.exceptions import RedisError

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

    def _key(self, limit: Limit, who: str) -> str:
        return f"limit:{limit.name}:{who}:{int(time.time() // limit.window_seconds)}"

    def hit(self, limit: Limit, who: str, unless_full: Optional[Limit] = None) -> bool:
        """Count one use; False when it goes over the limit, or when `unless_full` is already
        used up (read in the same round trip: a new USSD session checks both)."""
        key = self._key(limit, who)
        try:
            with self.redis.pipeline() as pipe:
                pipe.incr(key).expire(key, limit.window_seconds)
                if unless_full is not None:
                    pipe.get(self._key(unless_full, who))
                replies = pipe.execute()
        except RedisError:
            return True
        if unless_full is not None and int(replies[2] or 0) >= unless_full.count:
            return False
        return replies[0] <= limit.count

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
