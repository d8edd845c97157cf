"""The local SMS sink: with no Africa's Talking key, messages are stored and printed, never
sent. Each line goes to stdout and to var/sms-sink.log (JSON lines), numbers masked, so the
person running the service sees alerts arrive and the simulator can follow them; the public
help-line numbers of config/ stay whole, so a tester reads what residents get. WhatsApp
without WHATSAPP_PHONE_NUMBER_ID writes to the same file; each line's `channel` (sms,
whatsapp) says which the message would have gone by."""
from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import yaml

from gateway.channels.base import SENT, SendResult
from gateway.phones import mask_numbers


class SinkProvider:
    name = "sink"

    def __init__(self, path: Optional[Path] = None, stream=None, channel: str = "sms",
                 config_dir: Optional[Path] = None):
        """`stream` None means the sys.stdout of the moment of sending, not of import:
        a default of sys.stdout would keep writing to a stream since replaced or closed.
        `channel`: what this sink stands in for, written on each line."""
        self.path, self.stream, self.channel = path, stream, channel
        self.public = public_numbers(config_dir) if config_dir else frozenset()

    def send(self, to: str, body: str) -> SendResult:
        message_id = f"sink-{uuid.uuid4().hex}"
        line = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "id": message_id,
                "channel": self.channel, "to": mask_numbers(to), "body": mask_numbers(body, self.public)}
        by = "" if self.channel == "sms" else f"{self.channel} "
        print(f"[sms-sink] {by}to {line['to']}: {line['body']}", file=self.stream or sys.stdout, flush=True)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        return SendResult(SENT, message_id, 101)

    def send_template(self, to: str, name: str, language: str, params) -> SendResult:
        """A chat app's template, shown as its name and parameters."""
        return self.send(to, f"[{name}] {' | '.join(params)}")


def public_numbers(config_dir: Path) -> frozenset[str]:
    """The digits of every help-line (numbers.yaml) and agency's public number (agencies.yaml),
    as the texts show them and in E.164; a file that cannot be read gives none (all masked)."""
    found: set[str] = set()
    try:
        numbers = yaml.safe_load((config_dir / "numbers.yaml").read_text()).get("numbers") or []
        agencies = yaml.safe_load((config_dir / "agencies.yaml").read_text()).get("agencies") or []
    except (OSError, yaml.YAMLError, AttributeError):
        return frozenset()
    for raw in [n.get("dial") for n in numbers] + [a.get("public_phone") for a in agencies]:
        digits = re.sub(r"\D", "", str(raw or ""))
        if digits:
            found.add(digits)
            if digits.startswith("0"):
                found.add("62" + digits[1:])
    return frozenset(found)
