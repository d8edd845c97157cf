"""A circuit breaker for the SMS provider, kept in Redis so every worker shares it.

When the provider fails FAILURES_TO_OPEN times in a row (network errors, timeouts, 5xx), the
circuit opens for OPEN_SECONDS: sends fail fast as retryable, without a request and without a
10-second timeout each, so an outage neither blocks the workers nor burns every retry in a
minute. The first send after that is the probe: a success closes the circuit. Redis trouble
leaves the circuit closed: the breaker must never be the reason an alert is not tried."""
from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

FAILURES_TO_OPEN = 5
OPEN_SECONDS = 30
FAILURES_KEY, OPEN_KEY = "sms:breaker:failures", "sms:breaker:open"


class Breaker:
    def __init__(self, redis: Redis, time_scale: float = 1.0, name: str = "sms"):
        """`name`: each provider has its own circuit, so a chat app's outage never pauses SMS."""
        self.redis, self.open_seconds = redis, max(1, round(OPEN_SECONDS * time_scale))
        self.name = name
        self.failures_key, self.open_key = f"{name}:breaker:failures", f"{name}:breaker:open"

    def is_open(self) -> bool:
        try:
            return bool(self.redis.exists(self.open_key))
        except RedisError:
            return False

    def record(self, ok: bool) -> None:
        try:
            if ok:
                self.redis.delete(self.failures_key)
                return
            with self.redis.pipeline() as pipe:
                failures = pipe.incr(self.failures_key).expire(self.failures_key, 10 * self.open_seconds).execute()[0]
            if failures >= FAILURES_TO_OPEN:
                self.redis.set(self.open_key, 1, ex=self.open_seconds)
                self.redis.delete(self.failures_key)
                log.error("%s provider failed %d times in a row: pausing sends for %ds", self.name, failures,
                          self.open_seconds)
        except RedisError:
            pass
