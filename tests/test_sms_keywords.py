"""The SMS keyword parser on the shipped data (no Flask, no Redis); free text: test_intake.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.sms import load_keywords, parse

CONFIG = Path(__file__).resolve().parent.parent / "config"
KEYWORDS = load_keywords(CONFIG / "keywords.yaml")
TABLE = KEYWORDS.table()

PARSING = [
    ("STOP", "stop", None, ""),
    ("stop.", "stop", None, ""),
    ("Stop thank you", "stop", None, "thank you"),
    ("unsubscribe", "stop", "en", ""),
    ("  BERHENTI ", "stop", "id", ""),
    ("Bérhenti!", "stop", "id", ""),
    ("mulai", "start", "id", ""),
    ("LAPOR anak saya dibawa calo", "report", "id", "anak saya dibawa calo"),
    ("lapor: ada penampungan di Sekayu", "report", "id", "ada penampungan di Sekayu"),
    ("Report job scam in Palembang", "report", "en", "job scam in Palembang"),
    ("INFO OKI", "info", "id", "OKI"),
    ("tolong", "info", "id", ""),
    ("HELP", "info", "en", ""),
    ("tanda", "signs", "id", ""),
    ("STATUS K7Q2MX", "status", None, "K7Q2MX"),
    ("status k7q2mx", "status", None, "k7q2mx"),
    ("BAHASA EN", "language", "id", "EN"),
    ("LANGUAGE id", "language", "en", "id"),
    ("TERIMA K7Q2MX", "ack", "id", "K7Q2MX"),
    ("ok k7q2mx", "ack", None, "k7q2mx"),
    ("ACK k7q2mx", "ack", "en", "k7q2mx"),
    ("SELESAI K7Q2MX", "close", "id", "K7Q2MX"),
    ("halo", None, None, "halo"),
    ("OKU Timur", None, None, "OKU Timur"),
    ("", None, None, ""),
    ("🙂🙂", None, None, "🙂🙂"),
    ("stopwatch", None, None, "stopwatch"),  # whole words only
]


@pytest.mark.parametrize("text, command, lang, rest", PARSING, ids=[p[0] or "empty" for p in PARSING])
def test_parse(text, command, lang, rest):
    parsed = parse(text, TABLE)
    assert (parsed.command, parsed.lang, parsed.rest) == (command, lang, rest)


@given(st.text(max_size=300))
def test_parse_never_fails(text):
    parsed = parse(text, TABLE)
    assert parsed.command is None or parsed.command in KEYWORDS.commands


README = (CONFIG.parent / "README.md").read_text()


@pytest.mark.parametrize("word", sorted({w for by_lang in KEYWORDS.commands.values()
                                         for listed in by_lang.values() for w in listed}))
def test_every_keyword_is_documented_in_the_readme(word):
    section = README[README.index("## SMS keywords"):README.index("## Operator commands")]
    assert f"`{word}`" in section
