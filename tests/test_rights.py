"""Nothing legal is told to a resident without a source: every rights text has its law,
articles and source in config/rights.yaml, and every fact there is shown somewhere."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.content import load_content

CONFIG = Path(__file__).resolve().parent.parent / "config"
FACTS = yaml.safe_load((CONFIG / "rights.yaml").read_text())["facts"]
CONTENT = load_content(CONFIG)
RIGHTS_KEYS = sorted({k for lang in CONTENT.catalog.languages for k in CONTENT.catalog.texts[lang]
                      if (k.startswith(("rights.p", "sms.rights")) or k == "sms.migrate")})


@pytest.mark.parametrize("key", RIGHTS_KEYS)
def test_every_rights_text_has_a_sourced_fact(key):
    facts = [f for f in FACTS if key in f["keys"]]
    assert facts, f"{key} states law with no entry in config/rights.yaml"
    for fact in facts:
        assert fact["law"].strip() and fact["articles"].strip() and fact["source"].startswith("http")


def test_every_fact_is_shown_and_every_rights_screen_is_covered():
    shown = {k for f in FACTS for k in f["keys"]}
    assert shown <= set(RIGHTS_KEYS) | {"sms.rights"}
    screens = [s.text[0] for name, s in CONTENT.flow.screens.items() if name.startswith("rights_")]
    assert screens and all(text in shown for text in screens)


@pytest.mark.parametrize("lang", ["id", "en"])
def test_articles_named_on_screen_are_in_the_sources(lang):
    """A screen citing `Ps. 48` / `Art. 48` must rest on a fact whose articles name Pasal 48."""
    import re

    for key in RIGHTS_KEYS:
        cited = set(re.findall(r"(?:Ps\.|Art\.) ([\dA-Z, -]+)", CONTENT.catalog.text(lang, key)))
        numbers = {n for group in cited for n in re.findall(r"\d+[A-Z]?", group)}
        articles = " ".join(f["articles"] for f in FACTS if key in f["keys"])
        assert all(re.search(rf"\b{n}\b", articles) for n in numbers), (lang, key, numbers, articles)
