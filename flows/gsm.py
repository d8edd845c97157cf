"""GSM 03.38 alphabet: a text outside it is sent as UCS-2, which cuts an SMS from 160 to 70
characters and may not render on a feature phone's USSD screen at all."""

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "^{}\\[~]|€\f"  # each costs two septets
_BASIC, _EXT = frozenset(BASIC), frozenset(EXTENSION)


def is_gsm7(text: str) -> bool:
    return all(ch in _BASIC or ch in _EXT for ch in text)


def septets(text: str) -> int:
    """Length in GSM-7 septets (extension characters count twice)."""
    return sum(2 if ch in _EXT else 1 for ch in text)


def encoding(text: str) -> str:
    return "GSM-7" if is_gsm7(text) else "UCS-2"
