"""The worker process's Runtime, built once from the environment on first use."""
from __future__ import annotations

from functools import lru_cache

from gateway.runtime import Runtime, build_runtime
from gateway.settings import Settings
from gateway.store.db import WORKER_WRITE_POLL_SECONDS


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    return build_runtime(Settings.from_env(), redis_timeout=None, write_poll_seconds=WORKER_WRITE_POLL_SECONDS)
