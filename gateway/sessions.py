"""USSD session state in Redis, with a TTL.

Redis is a cache here, not the record: on a miss or an error the caller replays the inputs,
so a Redis restart never breaks a session mid-report. The stored value holds no phone number."""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Optional

from redis import Redis
from redis.exceptions import RedisError

from config.settings import SESSION_TTL_SECONDS

log = logging.getLogger(__name__)


def digest(inputs) -> str:
    """Fingerprint of the inputs a cached state was computed from."""
    return hashlib.blake2b("*".join(inputs).encode(), digest_size=8).hexdigest()


class SessionStore:
    def __init__(self, redis: Redis, ttl: int = SESSION_TTL_SECONDS, prefix: str = "ussd"):
        self.redis, self.ttl, self.prefix = redis, ttl, prefix

    def _key(self, channel: str, session_id: str) -> str:
        return f"{self.prefix}:{channel}:{session_id}"

    def load(self, channel: str, session_id: str) -> Optional[dict]:
        try:
            raw = self.redis.get(self._key(channel, session_id))
            value = json.loads(raw) if raw else None
        except (RedisError, ValueError) as exc:
            log.warning("session cache unavailable, replaying inputs: %s", type(exc).__name__)
            return None
        return value if isinstance(value, dict) else None  # anything else is not ours: replay

    def save(self, channel: str, session_id: str, value: dict) -> None:
        try:
            self.redis.set(self._key(channel, session_id), json.dumps(value, separators=(",", ":")), ex=self.ttl)
        except RedisError as exc:
            log.warning("session cache not saved: %s", type(exc).__name__)

    def delete(self, channel: str, session_id: str) -> None:
        try:
            self.redis.delete(self._key(channel, session_id))
        except RedisError as exc:
            log.warning("session cache not cleared: %s", type(exc).__name__)
