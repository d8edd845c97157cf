"""Sending on a chat app (WhatsApp): its 24-hour rule, its templates and the fall back to SMS.

A chat app lets a business write freely only within 24 hours of the person's last message;
after that only a template the app approved beforehand may go out. The last message is the
inbox itself: every message a person sent, whatever its kind, is an InboundMessage row with
its time. Templates (config/whatsapp.yaml) exist for the two messages the gateway starts
itself, a responder's alert and a reporter's neutral feedback. When a chat send fails, or no
template fits, those two go by SMS instead: an alert must reach someone, and SMS is what every
duty number and reporter has."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional

import yaml
from sqlalchemy import select

from gateway.channels.base import REJECTED, RETRY, SENT, Channel, SendResult
from gateway.messaging.breaker import Breaker
from gateway.store.models import InboundMessage, Message, Report

if TYPE_CHECKING:
    from gateway.runtime import Runtime

WINDOW = timedelta(hours=24)
# What may fall back to SMS when the chat app cannot carry it; a reply to a chat message stays
# on the app (the person chose it, and the window is open when it is answered).
SMS_FALLBACK = ("alert", "feedback")
TEMPLATE_PURPOSES = SMS_FALLBACK
TEMPLATE_PARAMS = ("ref", "body")  # what a template's body placeholders may be filled with, in order
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
CONFIG_FILE = "whatsapp.yaml"


@dataclass(frozen=True)
class Template:
    name: str
    language: str
    params: tuple[str, ...]


def load_templates(config_dir: Path) -> tuple[dict[str, Template], list[str]]:
    """The templates by purpose, and every problem found (file, entry and field named). A
    missing file means no templates: outside the window everything goes by SMS."""
    path = Path(config_dir) / CONFIG_FILE
    if not path.exists():
        return {}, []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        return {}, [f"{CONFIG_FILE}: not YAML: {exc}"]
    entries = raw.get("templates") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        return {}, [f"{CONFIG_FILE}: expected a mapping `templates:` of purpose to template"]
    templates, problems = {}, []
    for purpose, entry in entries.items():
        where = f"{CONFIG_FILE}: templates: {purpose}"
        if purpose not in TEMPLATE_PURPOSES:
            problems.append(f"{where}: unknown purpose; allowed: {', '.join(TEMPLATE_PURPOSES)}")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected name, language and params")
            continue
        name, language, params = entry.get("name"), entry.get("language"), entry.get("params", [])
        if not isinstance(name, str) or not _TEMPLATE_NAME.match(name):
            problems.append(f"{where}: name: lower-case letters, digits and _ only, as Meta requires")
        if not isinstance(language, str) or not _LANGUAGE.match(language):
            problems.append(f"{where}: language: a code such as id or en_US")
        if not isinstance(params, list) or any(p not in TEMPLATE_PARAMS for p in params):
            problems.append(f"{where}: params: a list of {', '.join(TEMPLATE_PARAMS)}")
            continue
        if not any(p.startswith(where) for p in problems):
            templates[purpose] = Template(name, language, tuple(params))
    return templates, problems


def in_window(rt: Runtime, to: str, channel: str = Channel.WHATSAPP) -> bool:
    """Whether the person wrote on the chat app within the last 24 hours (the app's own rule:
    never shortened by TIME_SCALE)."""
    since = datetime.now(timezone.utc) - WINDOW
    with rt.db.session() as session:
        return session.scalar(select(InboundMessage.id).where(
            InboundMessage.sender_index.in_(rt.vault.blind_indexes(to)), InboundMessage.channel == channel,
            InboundMessage.received_at >= since).limit(1)) is not None


def _one_line(text: str) -> str:
    """A template parameter may hold no line break, tab or run of spaces."""
    return " ".join(text.split())


def template_params(rt: Runtime, message: Message, body: str, template: Template) -> list[str]:
    values: Mapping[str, str] = {"body": _one_line(body)}
    if "ref" in template.params:
        with rt.db.session() as session:
            values = {**values, "ref": session.scalar(select(Report.ref).where(Report.id == message.report_id)) or ""}
    return [values[p] for p in template.params]


def send(rt: Runtime, message: Message, to: str, body: str) -> tuple[SendResult, str, Optional[str]]:
    """Send a chat message: free text in the window, else its purpose's template, else (or when
    the app fails) SMS for an alert or feedback. Returns the result, the provider that gave it,
    and the channel it went by (None: SMS)."""
    app, breaker = rt.whatsapp, Breaker(rt.redis, rt.settings.time_scale, "wa")
    template = rt.templates.get(message.purpose)
    result: Optional[SendResult] = None
    paused = breaker.is_open()
    if paused:
        result = SendResult(RETRY, reason="whatsapp paused after repeated failures")
    elif in_window(rt, to):
        result = app.send(to, body)
    elif template is not None:
        result = app.send_template(to, template.name, template.language, template_params(rt, message, body, template))
    if result is not None and not paused:
        breaker.record(ok=result.outcome != RETRY)
    if (result is None or result.outcome != SENT) and message.purpose in SMS_FALLBACK:
        sms = rt.provider.send(to, body)
        Breaker(rt.redis, rt.settings.time_scale).record(ok=sms.outcome != RETRY)
        return sms, rt.provider.name, None
    return result or SendResult(REJECTED, reason="outside the 24-hour window, no template"), app.name, Channel.WHATSAPP
