"""The long-lived parts of a process (web worker or RQ worker), built once from Settings."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

from redis import Redis
from rq import Queue

from gateway.cases import roster
from gateway.channels import registry
from gateway.channels.base import Provider
from gateway.console import accounts
from gateway.content import Content, checked_content
from gateway.crypto import Vault, development_key
from gateway.errors import ConfigError
from gateway.limits import Limit, Limiter, per_number, send_budget
from gateway.messaging.chat import Template, load_templates
from gateway.phones import digit_forms
from gateway.settings import Settings
from gateway.store.db import WEB_WRITE_POLL_SECONDS, Database

REDIS_TIMEOUT_SECONDS = 0.5  # a webhook must answer even when Redis hangs


@dataclass
class Runtime:
    settings: Settings
    content: Optional[Content]  # None only for the CLI, when config/ cannot even be parsed
    vault: Vault
    db: Database
    config_problems: tuple[str, ...] = ()
    redis_timeout: Optional[float] = REDIS_TIMEOUT_SECONDS  # None for a worker: RQ blocks on BLPOP

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.redis_url, socket_timeout=self.redis_timeout,
                              socket_connect_timeout=self.redis_timeout, health_check_interval=30)

    @cached_property
    def queue(self) -> Queue:
        return Queue(self.settings.queue_name, connection=self.redis)

    @cached_property
    def limiter(self) -> Limiter:
        return Limiter(self.redis)

    @cached_property
    def limits(self) -> dict[str, Limit]:
        return per_number(self.settings)

    @cached_property
    def send_budget(self) -> Limit:
        return send_budget(self.settings)

    @cached_property
    def provider(self) -> Provider:
        return registry.sender(self.settings, self._public_numbers())

    @cached_property
    def whatsapp(self):
        """The chat app's sender: texts and approved templates."""
        return registry.chat_sender(self.settings, self._public_numbers())

    def _public_numbers(self) -> frozenset[str]:
        return digit_forms(self.content.directory.public_phones()) if self.content else frozenset()

    @cached_property
    def templates(self) -> dict[str, Template]:
        """config/whatsapp.yaml by purpose; checked when the runtime is built."""
        return load_templates(self.settings.config_dir)[0]


def data_key(settings: Settings) -> str:
    """DATA_KEY, or in development the key kept under VAR_DIR (created on first use)."""
    return settings.data_key or development_key(settings.var_dir / "data.key")


def build_runtime(settings: Settings, strict: bool = True,
                  redis_timeout: Optional[float] = REDIS_TIMEOUT_SECONDS,
                  write_poll_seconds: float = WEB_WRITE_POLL_SECONDS) -> Runtime:
    """Refuse to start on a configuration that would be unsafe or broken. With strict=False
    (operator commands) broken content is kept as problems, so `validate-config` can list them.
    A worker passes `redis_timeout=None` and WORKER_WRITE_POLL_SECONDS (gateway.store.db: on
    SQLite the processes that answer callers then take the write lock first)."""
    problems = settings.problems()
    if problems:
        raise ConfigError(problems)
    content, content_problems = None, []
    try:
        content, content_problems = checked_content(settings.config_dir)
    except ConfigError as exc:
        content_problems = exc.problems
    content_problems = [*content_problems, *load_templates(settings.config_dir)[1]]
    if strict and content_problems:
        raise ConfigError(content_problems)
    runtime = Runtime(settings, content, Vault(data_key(settings)), Database(settings.database_url, write_poll_seconds),
                      tuple(content_problems), redis_timeout)
    if strict and settings.production:
        if problems := roster.production_problems(runtime) + accounts.production_problems(runtime):
            raise ConfigError(problems)
    return runtime
