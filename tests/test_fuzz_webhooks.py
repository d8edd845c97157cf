"""20,000 generated callbacks across the three webhooks, as an attacker or a broken aggregator
would send them: no 500, no unhandled exception, every USSD answer a valid CON/END of at most
182 characters. Seeded, so a failure can be replayed; the seed is in the assertion message."""
from __future__ import annotations

import logging
import random
import string

import pytest

pytestmark = pytest.mark.slow

REQUESTS = 20_000
SEED = 20261128
NASTY = ["", "*", "**", "*" * 500, "0", "00", "98", "1*1*1*2", "🙂", "😀" * 50, "' OR 1=1 --", "<script>x</script>",
         "%00", "\x00", "\u202e", "A" * 10_000, "1" * 200, "١٢٣", "ＳＴＯＰ", "lapor\n\tOKI", "STOP", "LAPOR calo OKI",
         "TERIMA ABCDEF", "STATUS ZZZZZZ", "Success", "Failed", "Delivered", "ATXid_1", "%2B62812", " 6281234567890"]
PHONES = ["+6281234567890", "%2B6281234567890", " 6281234567890", "081234567890", "+1", "abc", "", "+" + "9" * 30,
          "TELKOMSEL", "+62 812-3456-7890"]


def junk(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return rng.choice(NASTY)
    if kind < 0.8:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 40)))
    return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 30)))


def form(rng: random.Random, fields: dict) -> dict:
    out = {}
    for name, make in fields.items():
        if rng.random() < 0.9:  # sometimes a field is missing
            out[name] = make() if rng.random() < 0.7 else junk(rng)
    for _ in range(rng.randint(0, 2)):  # and sometimes there are strangers
        out[junk(rng)[:20] or "x"] = junk(rng)
    return out


def test_webhooks_survive_generated_traffic(client, caplog):
    rng = random.Random(SEED)
    sessions = [f"ATUid_{i:04d}" for i in range(50)]
    generators = {
        "/at/ussd": {"sessionId": lambda: rng.choice(sessions), "serviceCode": lambda: "*384*123#",
                     "phoneNumber": lambda: rng.choice(PHONES), "networkCode": lambda: "51010",
                     "text": lambda: "*".join(rng.choice(["1", "2", "98", "0", "00", "9", "17"])
                                              for _ in range(rng.randint(0, 12)))},
        "/at/sms": {"from": lambda: rng.choice(PHONES), "to": lambda: "12345", "id": lambda: f"ATSMS_{rng.random()}",
                    "text": lambda: junk(rng), "date": lambda: "2026-11-28 10:00:00"},
        "/at/delivery": {"id": lambda: f"ATXid_{rng.randint(1, 50)}", "status": lambda: rng.choice(
            ["Success", "Failed", "Rejected", "Sent", "Buffered", "Submitted", "AbsentSubscriber", "Expired"]),
            "phoneNumber": lambda: rng.choice(PHONES), "failureReason": lambda: "DeliveryFailure"},
    }
    caplog.set_level(logging.ERROR)
    seen = {path: {} for path in generators}
    for i in range(REQUESTS):
        path = rng.choice(list(generators))
        response = client.post(path, data=form(rng, generators[path]))
        body = response.get_data(as_text=True)
        where = f"request {i} (seed {SEED}) to {path}: {response.status_code} {body[:80]!r}"
        assert response.status_code in (200, 400), where
        if path == "/at/ussd" and response.status_code == 200:
            assert body[:4] in ("CON ", "END ") and len(body) <= 182, where
        seen[path][response.status_code] = seen[path].get(response.status_code, 0) + 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "gateway.http"]
    assert all(counts.get(200) and counts.get(400) for counts in seen.values()), seen  # both paths exercised
