"""The SMS keyword parser and free-text matching on the shipped data (no Flask, no Redis)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.errors import FlowError
from flows.sms import COMMANDS, PhraseMatcher, load_keywords, parse, words
from gateway.directory import load_directory

CONFIG = Path(__file__).resolve().parent.parent / "config"
KEYWORDS = load_keywords(CONFIG / "keywords.yaml")
TABLE = KEYWORDS.table()
DIRECTORY = load_directory(CONFIG)
REGIONS = PhraseMatcher({r.code: [r.name, r.short, *r.aliases] for r in DIRECTORY.regions})
CATEGORIES = PhraseMatcher({c.id: c.keywords for c in DIRECTORY.categories})

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


REGION_TEXT = [
    ("anak saya dibawa calo dari kayuagung", "16.02"),
    ("di Kayu Agung kemarin", "16.02"),
    ("OKU Timur", "16.08"),
    ("oku timur, martapura", "16.08"),
    ("oku", "16.01"),
    ("OKUS", "16.09"),
    ("Muba", "16.06"),
    ("musi banyuasin", "16.06"),
    ("banyuasin", "16.07"),
    ("PALI", "16.12"),
    ("lubuk linggau", "16.73"),
    ("Lubuklinggau", "16.73"),
    ("palembang", "16.71"),
    ("Prabumulih!!", "16.74"),
    ("di desa saya", None),
    ("", None),
]


@pytest.mark.parametrize("text, code", REGION_TEXT, ids=[t or "empty" for t, _ in REGION_TEXT])
def test_regions_found_in_free_text(text, code):
    assert REGIONS.best(words(text)) == code


def test_every_region_is_found_by_its_own_names():
    for region in DIRECTORY.regions:
        for name in [region.name, region.short, *region.aliases]:
            assert REGIONS.best(words(f"kejadian di {name} kemarin")) == region.code, name


CATEGORY_TEXT = [
    ("ada lowongan kerja palsu gaji besar", "job_fraud"),
    ("anak saya dibawa calo, paspor ditahan", "illegal_pmi"),
    ("tidak ada kata kunci di sini", None),
]


@pytest.mark.parametrize("text, category", CATEGORY_TEXT)
def test_categories_found_in_free_text(text, category):
    assert CATEGORIES.best(words(text)) == category


def test_every_category_is_found_by_each_of_its_keywords():
    for category in DIRECTORY.categories:
        for keyword in category.keywords:
            found = CATEGORIES.best(words(keyword))
            assert found is not None, keyword


def test_keyword_file_errors_name_the_command(tmp_path):
    bad = tmp_path / "keywords.yaml"
    bad.write_text("version: 1\ncommands:\n" + "".join(f"  {c}: {{id: [W{i}]}}\n" for i, c in enumerate(COMMANDS))
                   + "  dance: {id: [DANSA]}\n")
    with pytest.raises(FlowError, match=r"unknown commands \['dance'\]"):
        load_keywords(bad)
    bad.write_text(bad.read_text().replace("dance: {id: [DANSA]}", "").replace(f"[W{len(COMMANDS) - 1}]", "[W0]"))
    with pytest.raises(FlowError, match=f"'W0' is a keyword of both {COMMANDS[0]} and {COMMANDS[-1]}"):
        load_keywords(bad)


@given(st.text(max_size=300))
def test_parse_never_fails(text):
    parsed = parse(text, TABLE)
    assert parsed.command is None or parsed.command in KEYWORDS.commands
    assert REGIONS.best(words(text)) in {None, *(r.code for r in DIRECTORY.regions)}


README = (CONFIG.parent / "README.md").read_text()


@pytest.mark.parametrize("word", sorted({w for by_lang in KEYWORDS.commands.values()
                                         for listed in by_lang.values() for w in listed}))
def test_every_keyword_is_documented_in_the_readme(word):
    section = README[README.index("## SMS keywords"):README.index("## Operator commands")]
    assert f"`{word}`" in section
