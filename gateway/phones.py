"""Phone numbers, always through `phonenumbers`: parse what a provider sends, store E.164,
show residents the national form they dial, and mask numbers wherever text may be logged."""
from __future__ import annotations

import re
from typing import Iterable, Optional

import phonenumbers

DEFAULT_REGION = "ID"
_DIALLABLE = re.compile(r"^\+?[\d ()\-]{4,20}$")  # no letters: phonenumbers would read them as a keypad


def normalise(raw: Optional[str]) -> Optional[str]:
    """E.164 for a valid number, else None. A `+` that arrived unencoded in a form body
    decodes to a space, so a leading space before digits is read as `+`."""
    if not raw:
        return None
    text = raw.strip()
    if not _DIALLABLE.match(text):
        return None
    if raw.startswith(" ") and text[:1].isdigit():
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def display_phone(number: str) -> str:
    """National format for Indonesian numbers (0821-7985-8798); short codes unchanged."""
    if not number.startswith("+"):
        return number
    parsed = phonenumbers.parse(number, DEFAULT_REGION)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL).replace(" ", "")


# Anything that looks like a subscriber number: 9+ digits, optionally with +, spaces or dashes.
_NUMBER = re.compile(r"(?<![\w+])(\+?\d[\d\-]{7,16}\d)(?![\w])")


def _mask(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(1))
    if len(digits) < 9:
        return match.group(1)
    plus = "+" if match.group(1).startswith("+") else ""
    return f"{plus}{digits[:2]} {digits[2:5]}-****-{digits[-4:]}"


def digit_forms(numbers: Iterable[str]) -> frozenset[str]:
    """Each number's digits as a text writes it and in international form (0811… and 62811…):
    what `mask_numbers` is given as `public`."""
    found = set()
    for number in numbers:
        digits = re.sub(r"\D", "", number)
        if digits:
            found.add(digits)
            if digits.startswith("0"):
                found.add("62" + digits[1:])
    return frozenset(found)


def mask_numbers(text: str, public: frozenset[str] = frozenset()) -> str:
    """`+6281234565678` becomes `+62 812-****-5678`: enough to tell numbers apart in a log.
    `public`: the digits of numbers anyone may see (help-lines), left as they are."""
    if public:
        return _NUMBER.sub(lambda m: m.group(1) if re.sub(r"\D", "", m.group(1)) in public else _mask(m), text)
    return _NUMBER.sub(_mask, text)
