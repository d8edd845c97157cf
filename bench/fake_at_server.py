"""The fake Africa's Talking SMS API (tests/fake_at.py) served for the benchmark: every accepted
message becomes one line `<unix time> <report ref or ->`, so report -> alert latency can be
measured without keeping numbers or texts.

Served by granian (one process, so one file and one lock), not by werkzeug's server as in the
tests: werkzeug closes every connection, and the real API keeps them alive, so each SMS would
pay a TCP connect the real one does not, on the client and in this stand-in for a remote
service, both on the benchmark's two cores."""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import fake_at  # noqa: E402

REF = re.compile(r"^TPPO ([2-9A-HJ-NP-Z]{6}):")  # an alert: config/messages alert.body


def app() -> fake_at.FakeAfricasTalking:
    """Granian's factory: the API key and the output file come from the environment."""
    out = open(os.environ["FAKE_AT_OUT"], "a", buffering=1)
    lock = threading.Lock()

    def accepted(message: dict) -> None:
        found = REF.search(message["message"])
        with lock:
            out.write(f"{time.time():.6f} {found.group(1) if found else '-'}\n")

    return fake_at.FakeAfricasTalking(api_key=os.environ["FAKE_AT_API_KEY"], on_message=accepted)
