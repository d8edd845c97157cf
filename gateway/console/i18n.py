"""The console's language: Bahasa Indonesia first, English second, with Flask-Babel.

Texts are written in English in the code and templates (gettext's msgids) and translated in
gateway/console/translations/id/LC_MESSAGES/messages.po; English needs no catalog. Only the
.po files are kept in git: the app compiles them on start into a folder under the system's
temporary directory named by their hash, so a checkout never serves a stale binary and no build
step is needed (docs/console.md says why). Names that come from config/ (categories, victims)
are read from config/messages in the same language.

A signed-in staff member's language is kept with the account (staff.lang); before sign-in a
cookie set by the switch on the sign-in page decides, else Indonesian."""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, request
from flask_babel import Babel, get_locale

LANGUAGES = ("id", "en")  # the first is the default
DEFAULT = LANGUAGES[0]
COOKIE = "tppo_console_lang"  # only before sign-in; an account keeps its own
WIB = ZoneInfo("Asia/Jakarta")
SOURCES = Path(__file__).resolve().parent / "translations"


def compile_catalogs(sources: Path = SOURCES) -> Path:
    """Every messages.po under `sources` as messages.mo in a folder named by their contents:
    workers started together write the same bytes (each by an atomic rename), and an edited
    catalog gets a new folder instead of a stale one."""
    pos = sorted(sources.glob("*/LC_MESSAGES/messages.po"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in pos)).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"tppo-console-i18n-{digest}"
    for po in pos:
        mo = target / po.relative_to(sources).with_suffix(".mo")
        if mo.exists():
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parts[-3])
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        part = mo.with_suffix(f".{os.getpid()}.part")
        part.write_bytes(buffer.getvalue())
        os.replace(part, mo)
    return target


def language() -> str:
    """The language of this request: the account's, else the sign-in page's cookie, else Indonesian."""
    staff = g.get("staff")
    chosen = getattr(staff, "lang", None) or request.cookies.get(COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compile_catalogs())
    Babel(app, default_locale=DEFAULT, default_timezone="Asia/Jakarta", locale_selector=language)


def lang() -> str:
    return str(get_locale() or DEFAULT)


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; every time stored is UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(WIB)


def wib(moment: Optional[datetime], with_date: bool = True) -> str:
    """`15 Januari 2026 15.04 WIB` or `15:04 WIB`: month names in the staff member's language."""
    if moment is None:
        return "—"
    local = _local(moment)
    if not with_date:
        return local.strftime("%H:%M WIB")
    return format_datetime(local, "d MMMM y HH:mm", tzinfo=WIB, locale=lang()) + " WIB"


def day(moment) -> str:
    """A calendar day with its month's name: `15 Januari 2026`."""
    if isinstance(moment, datetime):
        moment = _local(moment).date()
    return format_date(moment, "d MMMM y", locale=lang())


def short_day(moment) -> str:
    """`15 Jan`: for a chart's axis."""
    return format_date(moment, "d MMM", locale=lang())
