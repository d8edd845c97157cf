"""USSD session state in Redis, with a TTL, for a channel that sends only the latest answer
(one that sends every input so far needs none: gateway.ussd replays them).

The stored value holds no phone number. On a miss or an error the caller starts again from the
first screen: the report itself is only ever filed in the database."""
from __future__ import annotations

import json
import logging
from typing import Optional

from redis import Redis
from redis.exceptions import RedisError

from config.settings import SESSION_TTL_SECONDS

log = logging.getLogger(__name__)


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
            log.warning("session state unavailable: %s", type(exc).__name__)
            return None
        return value if isinstance(value, dict) else None  # anything else is not ours

    def save(self, channel: str, session_id: str, value: dict) -> None:
        try:
            self.redis.set(self._key(channel, session_id), json.dumps(value, separators=(",", ":")), ex=self.ttl)
        except RedisError as exc:
            log.warning("session state not saved: %s", type(exc).__name__)

    def delete(self, channel: str, session_id: str) -> None:
        try:
            self.redis.delete(self._key(channel, session_id))
        except RedisError as exc:
            log.warning("session state not cleared: %s", type(exc).__name__)
