"""The alert SMS a responder receives: what they need to act, nothing more. Always Bahasa
Indonesia, one 160-character GSM-7 segment; the reporter's number only with consent.

The reporter's own words are quoted as far as the segment has room, cut between words; the
place and time they name (`di Belitang`, `malam ini`) are kept even when the words around
them are cut, since a responder acts on where and when. An escalation says it is one, and why."""
from __future__ import annotations

from typing import Optional

from unidecode import unidecode

from flows.engine import Engine
from flows.gsm import is_gsm7, septets
from flows.wording import ascii_words

SMS_LIMIT = 160
# How the alert says a report came by text and the number is withheld: the channel, truthfully.
VIA = {"sms": "alert.sms_contact", "whatsapp": "alert.whatsapp_contact"}
# The ways a trusted report (a volunteer's PANTAU, by text) can name its reporter, checked to
# fit with everything else the alert can say; a USSD caller who declined contact is never a
# volunteer, and " Dari relawan." is longer than what "minta tidak dihubungi" adds.
CONTACT_SAMPLES = ({"contact_phone": "+628123456789012"}, *({"via": via} for via in VIA))
MIN_DETAILS = 12  # fewer characters of a report's words would say nothing
ALERT_LANG = "id"


def gsm_safe(text: str) -> str:
    """Transliterate anything outside GSM-7 rather than let one character triple the cost."""
    return text if is_gsm7(text) else unidecode(text)


ELLIPSIS = ".."  # GSM-7 has no single-character ellipsis


def _cut(text: str, room: int) -> str:
    """The longest prefix of `text` that fits `room` septets."""
    while text and septets(text) > room:
        text = text[:-1]
    return text


def excerpt(text: str, room: int, keep: tuple[str, ...] = ()) -> str:
    """`text` in `room` septets: whole when it fits, else its first words and then whichever of
    `keep` (what happened, the place, the time: folded words) the cut lost. A single word too long for the
    room is cut inside it, as nothing else fits."""
    if septets(text) <= room:
        return text
    words = text.split()
    for n in range(len(words) - 1, 0, -1):
        head = " ".join(words[:n])
        folded = " ".join(ascii_words(head))
        lost = [k for k in keep if f" {k} " not in f" {folded} "]
        candidate = head + ELLIPSIS + (" ".join(lost) if lost else "")
        if septets(candidate) <= room:
            return candidate
    for n in range(len(keep), 0, -1):  # no words of its own fit: what happened, the place, the times
        only_kept = ELLIPSIS + " ".join(keep[:n])
        if septets(only_kept) <= room:
            return only_kept
    return _cut(text, room)


def compose(engine: Engine, *, ref: str, category: str, victim: str, region_label: Optional[str],
            urgent: bool, contact_phone: Optional[str], details: Optional[str] = None, trusted: bool = False,
            via: Optional[str] = None, keep: tuple[str, ...] = (),
            escalation: Optional[tuple[str, int]] = None) -> str:
    """`details` (an SMS report's own words) is quoted as far as the segment has room.
    `via`: the text channel the reporter wrote on (VIA: sms, whatsapp), named so the responder
    knows why the number is not shared; None: a USSD caller who declined to be contacted.
    `escalation`: (the agency that did not answer, in how many minutes)."""
    t = lambda key, **kw: engine.catalog.text(ALERT_LANG, key, **kw)  # noqa: E731
    if contact_phone:
        contact = t("alert.contact", phone=contact_phone)
    else:
        contact = t(VIA[via] if via else "alert.no_contact")
    fields = dict(ref=ref,
                  category=engine.answer_label("category", category, ALERT_LANG),
                  victim=engine.answer_label("victim", victim, ALERT_LANG).lower(),
                  region=region_label or t("alert.unknown_region"),
                  urgent=t("alert.urgent") if urgent else "",
                  trusted=t("alert.trusted") if trusted else "",
                  contact=contact,
                  escalation=t("alert.escalation", agency=escalation[0], minutes=escalation[1]) if escalation else "")
    body = gsm_safe(t("alert.body", details="", **fields))
    if septets(body) > SMS_LIMIT and escalation:  # the why gives way before the what
        fields["escalation"] = t("alert.escalation_short")
        body = gsm_safe(t("alert.body", details="", **fields))
    words = " ".join(gsm_safe(details or "").split())
    room = SMS_LIMIT - septets(body) - len(' ""')
    if words and room >= MIN_DETAILS:
        body = gsm_safe(t("alert.body", details=f' "{excerpt(words, room, keep)}"', **fields))
    return body


def check(engine: Engine, region_labels: list[str], sample_ref: str) -> list[str]:
    """The longest alert possible must fit one segment: for every category a caller can choose
    (a sub-list's too) and every victim, whichever way it names the reporter, with an
    escalation's words and without. The area is named once, and an escalation that does not fit
    gives way to its short form, so the area with the longest name is the one that can overflow."""
    region = max(region_labels, key=septets)
    for category in engine.values("category", ALERT_LANG):
        for victim in engine.values("victim", ALERT_LANG):
            for contact in CONTACT_SAMPLES:
                for escalation in (("", 0), None):
                    body = compose(engine, ref=sample_ref, category=category, victim=victim, region_label=region,
                                   urgent=True, trusted=True, escalation=escalation,
                                   **{"contact_phone": None, **contact})
                    if septets(body) > SMS_LIMIT:
                        return [f"id.yaml: alert.body is {septets(body)} characters for "
                                f"{category}/{victim}/{region}, over {SMS_LIMIT}: {body!r}"]
    return []
