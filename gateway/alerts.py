"""The alert SMS a responder receives: what they need to act, nothing more. Always Bahasa
Indonesia, one 160-character GSM-7 segment; the reporter's number only with consent."""
from __future__ import annotations

from typing import Optional

from unidecode import unidecode

from flows.engine import Engine
from flows.gsm import is_gsm7, septets

SMS_LIMIT = 160
MIN_DETAILS = 12  # fewer characters of a report's words would say nothing
ALERT_LANG = "id"


def gsm_safe(text: str) -> str:
    """Transliterate anything outside GSM-7 rather than let one character triple the cost."""
    return text if is_gsm7(text) else unidecode(text)


def _cut(text: str, room: int) -> str:
    """The longest prefix of `text` that fits `room` septets."""
    while text and septets(text) > room:
        text = text[:-1]
    return text


def compose(engine: Engine, *, ref: str, category: str, victim: str, region_label: Optional[str],
            urgent: bool, contact_phone: Optional[str], details: Optional[str] = None, trusted: bool = False) -> str:
    """`details` (an SMS report's own words) is quoted as far as the segment has room."""
    t = lambda key, **kw: engine.catalog.text(ALERT_LANG, key, **kw)  # noqa: E731
    fields = dict(ref=ref,
                  category=engine.answer_label("category", category, ALERT_LANG),
                  victim=engine.answer_label("victim", victim, ALERT_LANG).lower(),
                  region=region_label or t("alert.unknown_region"),
                  urgent=t("alert.urgent") if urgent else "",
                  trusted=t("alert.trusted") if trusted else "",
                  contact=t("alert.contact", phone=contact_phone) if contact_phone else t("alert.no_contact"))
    body = gsm_safe(t("alert.body", details="", **fields))
    words = " ".join(gsm_safe(details or "").split())
    room = SMS_LIMIT - septets(body) - len(' ""')
    if words and room >= MIN_DETAILS:
        body = gsm_safe(t("alert.body", details=f' "{_cut(words, room)}"', **fields))
    return body


def check(engine: Engine, regions: list[str], sample_ref: str) -> list[str]:
    """The longest alert possible must fit one segment."""
    problems = []
    for category in engine.options("category", ALERT_LANG).values():
        for victim in engine.options("victim", ALERT_LANG).values():
            for region in regions:
                body = compose(engine, ref=sample_ref, category=category.value, victim=victim.value,
                               region_label=region, urgent=True, contact_phone="+628123456789012", trusted=True)
                if septets(body) > SMS_LIMIT:
                    problems.append(f"id.yaml: alert.body is {septets(body)} characters for "
                                    f"{category.value}/{victim.value}/{region}, over {SMS_LIMIT}: {body!r}")
                    return problems
    return problems
