"""What a reporter receives may be read by whoever else holds her phone: replies open with
neutral words, the first reply to a report suggests deleting it, the contact question names the
shared phone; and the SMS pages on rights and safe migration answer their keywords."""
from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path

import pytest
from inline_jobs import drain

from gateway.content import load_content

CONTENT = load_content(Path(__file__).resolve().parent.parent / "config")
# Replies only responders receive (acknowledging, closing a case) and the report alert itself.
RESPONDER_ONLY = {"sms.ack_done", "sms.ack_already", "sms.closed", "sms.ack_usage"}
# In the first three words; a keyword to send (LAPOR, REPORT, in capitals) is an instruction, not a
# giveaway, and cannot be avoided in the texts that explain it.
REVEALING = re.compile(r"^\W*(?:\S+\s+){0,2}?"
                       r"(?:TPPO|[Ll]aporan|[Pp]olisi|[Pp]erdagangan|[Rr]eport|[Pp]olice|[Tt]rafficking)\b")
_ids = itertools.count(1)


@pytest.mark.parametrize("lang", ["id", "en"])
def test_no_reply_to_a_resident_opens_with_a_revealing_word(lang):
    texts = CONTENT.catalog.texts[lang]
    for key, text in texts.items():
        if (key.startswith("sms.") and not key.startswith("sms.state.") and key not in RESPONDER_ONLY) \
                or key == "helplines.body":  # INFO <area> answers with the help-line screen
            assert not REVEALING.match(text.format_map(defaultdict(str, region="OKI"))), (lang, key, text)


@pytest.mark.parametrize("lang, hint", [("id", "Hapus pesan ini"), ("en", "Delete this message")])
def test_every_first_reply_to_a_report_suggests_deleting_it(lang, hint):
    """A report by SMS is first answered by a question (place, then kind) or by its code."""
    for key in ("sms.ask_region", "sms.ask_category", "sms.report_done", "sms.feedback", "sms.urgent_done",
                "sms.urgent_ask_place"):
        assert hint in CONTENT.catalog.text(lang, key), key


# Texts about the prevention news, which goes by SMS whichever channel signed the number up.
SMS_ONLY = {"main.subscribe", "subscribe.region", "subscribe.confirm"}


@pytest.mark.parametrize("lang", ["id", "en"])
def test_what_a_resident_reads_on_either_channel_does_not_call_itself_an_sms(lang):
    """Replies and menu screens reach a resident by SMS, USSD or WhatsApp alike: "Hapus SMS ini"
    on WhatsApp tells her to delete something she cannot find."""
    for key, text in CONTENT.catalog.texts[lang].items():
        if key.startswith("alert.") or key in SMS_ONLY or key in RESPONDER_ONLY:
            continue
        assert not re.search(r"\bSMS\b", text), (lang, key, text)


@pytest.mark.parametrize("lang, words", [("id", "dipakai orang lain"), ("en", "others use this phone")])
def test_the_contact_question_names_the_shared_phone(lang, words):
    assert words in CONTENT.catalog.text(lang, "report.contact")
    assert re.search(r"HP ini|this phone", CONTENT.catalog.text(lang, "subscribe.confirm"))


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
