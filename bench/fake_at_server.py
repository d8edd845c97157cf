"""The fake Africa's Talking SMS API (tests/fake_at.py) as a process for the benchmark: every
accepted message becomes one line `<unix time> <report ref or ->`, so report -> alert latency
can be measured without keeping numbers or texts. HTTP/1.1 keep-alive, as the real API has."""
from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import fake_at  # noqa: E402

REF = re.compile(r"^TPPO ([2-9A-HJ-NP-Z]{6}):")  # an alert: config/messages alert.body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default="bench-api-key")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    fake_at._QuietHandler.protocol_version = "HTTP/1.1"  # keep-alive: the SDK session can reuse it
    out = open(args.out, "a", buffering=1)
    lock = threading.Lock()

    def accepted(message: dict) -> None:
        found = REF.search(message["message"])
        with lock:
            out.write(f"{time.time():.6f} {found.group(1) if found else '-'}\n")

    fake = fake_at.FakeAfricasTalking(api_key=args.api_key, port=args.port, on_message=accepted).start()
    print(f"fake AT listening on {fake.base_url}", file=sys.stderr, flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    fake.stop()


if __name__ == "__main__":
    main()
