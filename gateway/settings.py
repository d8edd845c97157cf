"""Settings from the environment: the names are a public interface (README, Configuration).

Tunables are UPPER_CASE with their unit in the name or the comment."""
from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Optional

ROOT = Path(__file__).resolve().parent.parent

SESSION_TTL_SECONDS = 180        # Africa's Talking ends a USSD session after 180 s
SMS_SEND_TIMEOUT_SECONDS = (3.05, 10)  # connect, read: far below the RQ job timeout
JOB_TIMEOUT_SECONDS = 60
RECONCILE_INTERVAL_SECONDS = 30  # a worker hands owed and soon-due outbox entries to RQ this often
MAX_FORM_BYTES = 16 * 1024       # a USSD or SMS callback is a few hundred bytes
SMS_FOLLOW_UP_SECONDS = 30 * 60  # an SMS report waits this long for a follow-up answer, then is filed as it is
SMS_FOLLOW_UP_QUESTIONS = 3      # at most this many follow-up questions per report, so two auto-repliers cannot loop
HELP_REPLY_INTERVAL_SECONDS = 3600  # at most one help text per number per hour
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
SMS_PROVIDERS = ("africastalking", "8x8", "sink")  # SMS_PROVIDER: where outgoing SMS go
WHATSAPP_API_URL = "https://graph.facebook.com/v24.0"  # the Graph API version the channel was written against
# What production asks of a shared secret (WEBHOOK_TOKEN, SECRET_KEY, METRICS_TOKEN). A cheap
# guard against the obviously guessable, not a proof of randomness: `secrets.token_urlsafe(32)`
# passes with a wide margin, a word, one repeated character or a short pattern repeated does not.
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 8           # different characters in it
MIN_SECRET_BITS_PER_CHAR = 2.5    # Shannon entropy of its own characters
MIN_DATA_KEY_DISTINCT_BYTES = 16  # of a Fernet key's 32 random bytes; an all-zero key has one


def _number(name: str, raw: Optional[str], default: float) -> float:
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def secret_weakness(value: str) -> Optional[str]:
    """Why `value` is too guessable to guard a production service, or None."""
    if len(value) < MIN_SECRET_LENGTH:
        return f"has {len(value)} characters, at least {MIN_SECRET_LENGTH} are needed"
    counts = Counter(value)
    bits = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    if len(counts) < MIN_SECRET_DISTINCT or bits < MIN_SECRET_BITS_PER_CHAR:
        return "is too predictable (too few different characters)"
    if any(all(value[i] == value[i + p] for i in range(len(value) - p)) for p in range(1, len(value) // 2 + 1)):
        return "repeats a shorter pattern"
    return None


def data_key_weakness(data_key: str) -> Optional[str]:
    """Why one of DATA_KEY's Fernet keys is unusable or not random, or None."""
    for n, key in enumerate((k.strip() for k in data_key.split(",") if k.strip()), 1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            return f"key {n} is not a Fernet key (32 url-safe base64 bytes)"
        if len(set(raw)) < MIN_DATA_KEY_DISTINCT_BYTES:
            return f"key {n} is not random (all zeros or a few repeated bytes)"
    return None


def _networks(raw: Optional[str]) -> tuple:
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in (raw or "").split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"ALLOWED_NETWORKS must be comma-separated networks like 10.0.0.0/8: {exc}") from None


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    var_dir: Path = ROOT / "var"  # local state: SQLite file, development key, SMS sink log
    database_url: str = ""        # empty: a SQLite file in var_dir
    redis_url: str = "redis://127.0.0.1:6379/0"
    at_username: str = "sandbox"
    at_api_key: Optional[str] = field(default=None, repr=False)
    at_sender_id: Optional[str] = None
    at_api_url: Optional[str] = None
    sms_provider: str = ""        # SMS_PROVIDER; empty: africastalking when AT_API_KEY is set, else sink
    sms8x8_api_key: Optional[str] = field(default=None, repr=False)
    sms8x8_subaccount_id: Optional[str] = None
    sms8x8_sender_id: Optional[str] = None
    sms8x8_api_url: str = "https://sms.8x8.id"  # 8x8's Indonesian region
    # WhatsApp Cloud API: the channel is on when WHATSAPP_PHONE_NUMBER_ID is set.
    whatsapp_token: Optional[str] = field(default=None, repr=False)
    whatsapp_phone_number_id: Optional[str] = None
    whatsapp_app_secret: Optional[str] = field(default=None, repr=False)
    whatsapp_verify_token: Optional[str] = field(default=None, repr=False)
    whatsapp_api_url: str = WHATSAPP_API_URL
    webhook_token: Optional[str] = field(default=None, repr=False)
    allowed_networks: tuple = ()  # ALLOWED_NETWORKS: comma-separated CIDRs allowed to call /at/*; empty: any
    proxy_hops: int = 0           # PROXY_HOPS: reverse proxies in front, whose X-Forwarded-For is trusted
    data_key: Optional[str] = field(default=None, repr=False)
    secret_key: Optional[str] = field(default=None, repr=False)    # SECRET_KEY: signs console session cookies
    metrics_token: Optional[str] = field(default=None, repr=False)  # METRICS_TOKEN: bearer token for /metrics
    config_dir: Path = ROOT / "config"
    queue_name: str = "default"
    retention_days: float = 365       # RETENTION_DAYS: a closed case keeps numbers and text this long
    inbox_retention_days: float = 30  # INBOX_RETENTION_DAYS: incoming SMS and finished jobs
    # Abuse limits per phone number (LIMIT_*): new USSD sessions per hour, reports per day, SMS per hour.
    limit_ussd_sessions_per_hour: float = 20
    limit_reports_per_day: float = 10
    limit_sms_per_hour: float = 30
    # LIMIT_SMS_SENT_PER_MINUTE: SMS to residents sent per minute, all numbers together; alerts to
    # responders are never held by it. The per-number limits cannot stop replies to many numbers.
    limit_sms_sent_per_minute: float = 300
    log_format: str = ""          # LOG_FORMAT: json or text; empty: json in production, text in development
    log_level: str = "info"       # LOG_LEVEL: debug, info, warning or error, for the gateway's own lines
    time_scale: float = 1.0       # TIME_SCALE: multiplies every wait (back-off, follow-up window); tests use 0.01
    # WORKER_HOST: the host part of worker names; empty: the machine's host name. Workers that share one
    # must share a process table: a reconciler takes a job from a worker of its own host whose pid is gone.
    worker_host: str = ""
    # WORKER_HEARTBEAT_SECONDS: a started job whose worker went silent this long is given to another
    # worker. A worker sends nothing while a job runs, so it must exceed JOB_TIMEOUT_SECONDS.
    worker_heartbeat_seconds: float = JOB_TIMEOUT_SECONDS + 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides) -> "Settings":
        get = lambda name: environ.get(name) or None  # noqa: E731  (empty means unset)
        values = dict(
            env=get("GATEWAY_ENV") or cls.env,
            var_dir=Path(get("VAR_DIR") or cls.var_dir),
            database_url=get("DATABASE_URL") or "",
            redis_url=get("REDIS_URL") or cls.redis_url,
            at_username=get("AT_USERNAME") or cls.at_username,
            at_api_key=get("AT_API_KEY"),
            at_sender_id=get("AT_SENDER_ID"),
            at_api_url=get("AT_API_URL"),
            sms_provider=(get("SMS_PROVIDER") or "").lower(),
            sms8x8_api_key=get("SMS8X8_API_KEY"),
            sms8x8_subaccount_id=get("SMS8X8_SUBACCOUNT_ID"),
            sms8x8_sender_id=get("SMS8X8_SENDER_ID"),
            sms8x8_api_url=get("SMS8X8_API_URL") or cls.sms8x8_api_url,
            whatsapp_token=get("WHATSAPP_TOKEN"),
            whatsapp_phone_number_id=get("WHATSAPP_PHONE_NUMBER_ID"),
            whatsapp_app_secret=get("WHATSAPP_APP_SECRET"),
            whatsapp_verify_token=get("WHATSAPP_VERIFY_TOKEN"),
            whatsapp_api_url=get("WHATSAPP_API_URL") or cls.whatsapp_api_url,
            webhook_token=get("WEBHOOK_TOKEN"),
            allowed_networks=_networks(get("ALLOWED_NETWORKS")),
            proxy_hops=int(_number("PROXY_HOPS", get("PROXY_HOPS"), 0)),
            data_key=get("DATA_KEY"),
            secret_key=get("SECRET_KEY"),
            metrics_token=get("METRICS_TOKEN"),
            log_format=(get("LOG_FORMAT") or "").lower(),
            log_level=(get("LOG_LEVEL") or cls.log_level).lower(),
            time_scale=_number("TIME_SCALE", get("TIME_SCALE"), cls.time_scale),
            worker_host=get("WORKER_HOST") or "",
            worker_heartbeat_seconds=_number("WORKER_HEARTBEAT_SECONDS", get("WORKER_HEARTBEAT_SECONDS"),
                                             cls.worker_heartbeat_seconds),
            limit_ussd_sessions_per_hour=_number("LIMIT_USSD_SESSIONS_PER_HOUR", get("LIMIT_USSD_SESSIONS_PER_HOUR"),
                                                 cls.limit_ussd_sessions_per_hour),
            limit_reports_per_day=_number("LIMIT_REPORTS_PER_DAY", get("LIMIT_REPORTS_PER_DAY"),
                                          cls.limit_reports_per_day),
            limit_sms_per_hour=_number("LIMIT_SMS_PER_HOUR", get("LIMIT_SMS_PER_HOUR"), cls.limit_sms_per_hour),
            limit_sms_sent_per_minute=_number("LIMIT_SMS_SENT_PER_MINUTE", get("LIMIT_SMS_SENT_PER_MINUTE"),
                                              cls.limit_sms_sent_per_minute),
            retention_days=_number("RETENTION_DAYS", get("RETENTION_DAYS"), cls.retention_days),
            inbox_retention_days=_number("INBOX_RETENTION_DAYS", get("INBOX_RETENTION_DAYS"),
                                         cls.inbox_retention_days),
        )
        settings = replace(cls(**values), **overrides)
        if not settings.database_url:
            settings = replace(settings, database_url=f"sqlite:///{settings.var_dir / 'gateway.db'}")
        return settings

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def sms_channel(self) -> str:
        """The provider outgoing SMS go through (one of SMS_PROVIDERS)."""
        return self.sms_provider or ("africastalking" if self.at_api_key else "sink")

    @property
    def sms_is_live(self) -> bool:
        """True when an SMS could reach a real phone: a live account is configured
        (8x8 has no sandbox, so any 8x8 account is live)."""
        if self.sms_channel == "8x8":
            return True
        return self.sms_channel == "africastalking" and bool(self.at_api_key) and self.at_username != "sandbox"

    @property
    def whatsapp_enabled(self) -> bool:
        """WhatsApp messages are sent through the Graph API (else to the local sink)."""
        return bool(self.whatsapp_phone_number_id)

    @property
    def demo_roster_allowed(self) -> bool:
        """The demo roster exists so a local run alerts somewhere visible; it must never
        make a stranger's phone ring, so it is refused with a live account or in production."""
        return not self.production and not self.sms_is_live

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or (not self.log_format and self.production)

    @property
    def log_level_number(self) -> int:
        return LOG_LEVELS.get(self.log_level, logging.INFO)

    def problems(self) -> list[str]:
        """Why this configuration must not start (empty when it may)."""
        out = []
        if self.env not in ("development", "production"):
            out.append(f"GATEWAY_ENV must be development or production, not {self.env!r}")
        if not 0 < self.time_scale <= 1:
            out.append(f"TIME_SCALE must be above 0 and at most 1, not {self.time_scale}")
        if self.log_format not in ("", "json", "text"):
            out.append(f"LOG_FORMAT must be json or text, not {self.log_format!r}")
        if self.log_level not in LOG_LEVELS:
            out.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}")
        if self.limit_sms_sent_per_minute < 1:
            out.append("LIMIT_SMS_SENT_PER_MINUTE must be at least 1")
        if self.retention_days < 0 or self.inbox_retention_days < 0:
            out.append("RETENTION_DAYS and INBOX_RETENTION_DAYS must not be negative")
        if self.sms_channel not in SMS_PROVIDERS:
            out.append(f"SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}, not {self.sms_provider!r}")
        if self.sms_channel == "africastalking" and not self.at_api_key:
            out.append("SMS_PROVIDER=africastalking needs AT_API_KEY")
        if self.sms_channel == "8x8" and not (self.sms8x8_api_key and self.sms8x8_subaccount_id):
            out.append("SMS_PROVIDER=8x8 needs SMS8X8_API_KEY and SMS8X8_SUBACCOUNT_ID")
        if self.whatsapp_enabled:
            missing = [name for name, value in (("WHATSAPP_TOKEN", self.whatsapp_token),
                                                ("WHATSAPP_APP_SECRET", self.whatsapp_app_secret),
                                                ("WHATSAPP_VERIFY_TOKEN", self.whatsapp_verify_token)) if not value]
            if missing:
                out.append(f"WHATSAPP_PHONE_NUMBER_ID is set, so WhatsApp needs {', '.join(missing)}: without the app "
                           "secret no callback can be trusted, without the token nothing can be sent")
        if self.production and self.time_scale != 1:
            out.append("TIME_SCALE is for tests and demos; production must not shorten its waits")
        heartbeat = self.worker_heartbeat_seconds
        if heartbeat < 1 or (self.production and heartbeat <= JOB_TIMEOUT_SECONDS):
            out.append(f"WORKER_HEARTBEAT_SECONDS must be at least 1, and in production above JOB_TIMEOUT_SECONDS "
                       f"({JOB_TIMEOUT_SECONDS}): a running job would be started again elsewhere")
        if self.production:
            out += self._production_problems()
        return out

    def _production_problems(self) -> list[str]:
        """Production alerts real people and holds real reports: it must send for real, and every
        secret must be its own and hard to guess."""
        out = []
        if self.sms_channel == "sink":
            out.append("GATEWAY_ENV=production needs an SMS provider (AT_API_KEY, or SMS_PROVIDER=8x8): the local "
                       "sink never sends, so alerts would be marked sent and never reach a responder")
        elif self.sms_channel == "africastalking" and self.at_username == "sandbox":
            out.append("GATEWAY_ENV=production needs a live Africa's Talking account: AT_USERNAME=sandbox never "
                       "delivers an SMS")
        shared = {"WEBHOOK_TOKEN": (self.webhook_token, "the secret in every callback URL"),
                   "SECRET_KEY": (self.secret_key, "signs console sessions"),
                   "METRICS_TOKEN": (self.metrics_token, "guards /metrics")}
        for name, (value, why) in shared.items():
            if not value:
                out.append(f"GATEWAY_ENV=production needs {name} ({why})")
            elif weakness := secret_weakness(value):
                out.append(f"{name} {weakness}: generate one with "
                           "`python -c \"import secrets; print(secrets.token_urlsafe(48))\"`")
        if not self.data_key:
            out.append("GATEWAY_ENV=production needs DATA_KEY (encrypts personal data at rest)")
        elif weakness := data_key_weakness(self.data_key):
            out.append(f"DATA_KEY {weakness}: generate one with "
                       "`python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"`")
        if self.whatsapp_enabled:
            for name, value in (("WHATSAPP_VERIFY_TOKEN", self.whatsapp_verify_token),
                                ("WHATSAPP_APP_SECRET", self.whatsapp_app_secret)):
                if value and (weakness := secret_weakness(value)):
                    out.append(f"{name} {weakness}")
            if not self.whatsapp_api_url.startswith("https://"):
                out.append("WHATSAPP_API_URL must be https:// in production: the token travels with every send")
        given = [v for v in (self.webhook_token, self.secret_key, self.metrics_token, self.whatsapp_verify_token) if v]
        given += [k.strip() for k in (self.data_key or "").split(",") if k.strip()]
        if len(given) != len(set(given)):
            out.append("WEBHOOK_TOKEN, SECRET_KEY, METRICS_TOKEN, WHATSAPP_VERIFY_TOKEN and every DATA_KEY key must "
                       "each be different: "
                       "one leaked secret must not open the others")
        return out
