"""The local SMS sink: with no Africa's Talking key, messages are stored and printed, never
sent. Each line goes to stdout and to var/sms-sink.log (JSON lines), numbers masked, so the
person running the service sees alerts arrive and the simulator can follow them; the public
help-line numbers stay whole, so a tester reads what residents get. WhatsApp
without WHATSAPP_PHONE_NUMBER_ID writes to the same file; each line's `channel` (sms,
whatsapp) says which the message would have gone by."""
from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from gateway.channels.base import SENT, SendResult
from gateway.phones import mask_numbers


class SinkProvider:
    name = "sink"

    def __init__(self, path: Optional[Path] = None, stream=None, channel: str = "sms",
                 public: frozenset[str] = frozenset()):
        """`stream` None means the sys.stdout of the moment of sending, not of import:
        a default of sys.stdout would keep writing to a stream since replaced or closed.
        `channel`: what this sink stands in for, written on each line. `public`: the digits of
        the numbers residents are told (phones.digit_forms), shown whole."""
        self.path, self.stream, self.channel = path, stream, channel
        self.public = public

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

