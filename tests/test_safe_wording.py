"""The SMS pages on the rights of mothers and children and on safe migration answer their
keywords, in the keyword's language."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from inline_jobs import drain

from gateway.content import load_content

CONTENT = load_content(Path(__file__).resolve().parent.parent / "config")
_ids = itertools.count(1)


@pytest.fixture
def text(at_app, fake_at, monkeypatch):
    """Text the service from one number; returns the SMS that came back."""
    client, rt = at_app.test_client(), at_app.extensions["gateway"].runtime

    def send(body: str) -> list[str]:
        seen = len(fake_at.messages)
        response = client.post("/at/sms", data={"from": "+6281298765499", "to": "12345", "text": body,
                                                "id": f"ATSMS_W{next(_ids):06d}", "date": "2026-12-03 10:00:00"})
        assert response.status_code == 200
        drain(rt, monkeypatch)
        return [m["message"] for m in fake_at.messages[seen:]]

    return send


def test_rights_and_safe_migration_by_sms(text):
    catalog = CONTENT.catalog
    assert text("HAK") == [catalog.text("id", "sms.rights")]
    assert text("hak ibu") == [catalog.text("id", "sms.rights_mother")]
    assert text("Hak anak.") == [catalog.text("id", "sms.rights_child")]
    assert text("AMAN") == [catalog.text("id", "sms.migrate")]
    assert "UU 18/2017 Ps. 30" in catalog.text("id", "sms.migrate") and "0800-1000" in catalog.text("id", "sms.migrate")


def test_english_keywords_answer_in_english(text):
    catalog = CONTENT.catalog
    assert text("RIGHTS MOTHER") == [catalog.text("en", "sms.rights_mother")]
    assert text("rights child") == [catalog.text("en", "sms.rights_child")]
    assert text("SAFE") == [catalog.text("en", "sms.migrate")]
