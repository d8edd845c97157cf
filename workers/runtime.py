"""The worker process's Runtime, built once from the environment on first use."""
from __future__ import annotations

from functools import lru_cache

from config.settings import Settings
from gateway.runtime import Runtime, build_runtime


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    return build_runtime(Settings.from_env(), redis_timeout=None, prompt_writes=False)
