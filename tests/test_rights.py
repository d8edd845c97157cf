"""Nothing legal is told to a resident without a source: every text that cites a law rests on a
sourced entry of config/rights.yaml for that law and article, every entry there has a source and
a date, and what is still to verify is shown to nobody."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.content import citations, load_content

CONFIG = Path(__file__).resolve().parent.parent / "config"
CONTENT = load_content(CONFIG)
FACTS = CONTENT.directory.facts
TEXTS = [(lang, key, text) for lang in CONTENT.catalog.languages
         for key, text in CONTENT.catalog.texts[lang].items() if not key.startswith("alert.")]


def test_citations_read_laws_and_articles_in_order():
    assert citations("(UU 4/2024 Ps. 4, 5) lalu (Ps. 76I) dan (Law 12/2022 Art. 10)") == [
        ("4 Tahun 2024", set()), ("4 Tahun 2024", {"4", "5"}), ("4 Tahun 2024", {"76I"}),
        ("12 Tahun 2022", set()), ("12 Tahun 2022", {"10"})]


@pytest.mark.parametrize("lang, key, text", [t for t in TEXTS if citations(t[2])], ids=lambda v: str(v)[:30])
def test_every_cited_article_rests_on_a_sourced_fact_for_that_text(lang, key, text):
    mine = [f for f in FACTS if key in f.keys]
    assert mine and all(f.status == "sourced" and f.source.startswith("http") for f in mine), key
    for law, articles in citations(text):
        pool = [f for f in mine if law is None or law in (f.law or "")]
        assert pool and articles <= set().union(*(f.pasal for f in pool)), (lang, key, law, articles)


def test_every_fact_has_a_source_a_date_and_shown_texts_that_exist():
    known = {key for _, key, _ in TEXTS}
    for fact in FACTS:
        assert fact.source.startswith("http") and fact.checked, fact.id
        assert set(fact.keys) <= known, fact.id


def test_what_is_still_to_verify_is_shown_to_nobody():
    """Pasal 33 (the reporter's confidentiality) was not found in any copy of the law: no text
    cites it, and the texts do not promise what Pasal 44 does not say ("wajib dirahasiakan")."""
    hidden = [f for f in FACTS if f.status == "to_verify"]
    assert any(f.id == "uu21_ps33_reporter" for f in hidden)
    assert all(not f.keys for f in hidden)
    for lang, key, text in TEXTS:
        assert not re.search(r"\b(?:Ps|Art)\. 33\b", text), (lang, key)
        assert "wajib dirahasiakan" not in text and "must be kept secret" not in text, (lang, key)


def test_every_rights_and_migration_screen_is_a_sourced_statement_or_says_where_to_go():
    screens = {name: s for name, s in CONTENT.flow.screens.items() if name.startswith(("rights_", "migrate_"))}
    backed = {k for f in FACTS if f.status == "sourced" for k in f.keys}
    service = {"rights.help", "migrate.p4"}  # numbers from config/numbers.yaml, no legal claim
    for name, screen in screens.items():
        assert screen.text[0] in backed | service, name


def test_the_mothers_and_children_branch_covers_what_the_law_gives_them():
    shown = " ".join(CONTENT.catalog.text("id", f"rights.mother_{n}") for n in range(1, 8))
    for needle in ("cuti melahirkan", "dipecat", "bantuan hukum", "Keguguran", "Suami", "puskesmas",
                   "Perkawinan anak", "Memeras tenaga anak", "Menjual bayi"):
        assert needle in shown, needle


def test_docs_list_every_legal_statement_for_review():
    """docs/content.md is what a lawyer reads: every fact with its article and source, and every
    text that cites the law exactly as a resident sees it."""
    docs = (CONFIG.parent / "docs" / "content.md").read_text(encoding="utf-8")
    review = docs[docs.index("## Every legal statement shown to residents"):]
    for fact in FACTS:
        assert f"`{fact.id}`" in review and (fact.articles or "") in review, fact.id
        for url in re.findall(r"https?://\S+", fact.source):
            assert url in review, (fact.id, url)
    for lang, key, text in TEXTS:
        if lang == "id" and (citations(text) or any(key in f.keys for f in FACTS)):
            assert f"| `{key}` | {text.replace('|', '/')} |" in review, key
