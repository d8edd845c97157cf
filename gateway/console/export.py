"""The task force's monthly figures as CSV: reports per month, kabupaten/kota, category, victim
group and outcome, counted from the database without decrypting anything.

Anonymised on the way out: no code, no date finer than a month, no text, and every count below
the threshold in config/console.yaml written as "<3", so a cell cannot point at one person.
Combinations with no report are left out, and no totals are given, since a total next to
hidden cells would let anyone subtract their way back to them. Headers and names are in the
staff member's language."""
from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timezone
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.console.casefile import utc
from gateway.console.i18n import WIB
from gateway.console.labels import Labels
from gateway.store.models import Report

SEPARATOR = ";"
OUTCOMES = {
    "closed": lambda: _("closed"),
    "acknowledged": lambda: _("acknowledged, still open"),
    "routed": lambda: _("waiting for acknowledgement"),
    "received": lambda: _("waiting for acknowledgement"),
    "unassigned": lambda: _("no duty number reached"),
    "incomplete": lambda: _("reporter's answer awaited"),
}


def first_month(now: datetime, months: int) -> tuple[int, int]:
    """(year, month) of the first of the last `months` calendar months in WIB, this one included."""
    local = now.astimezone(WIB)
    index = local.year * 12 + local.month - 1 - (months - 1)
    return index // 12, index % 12 + 1


def counts(session: Session, months: int, now: Optional[datetime] = None) -> Counter:
    """(YYYY-MM, region code, category, victim, status) -> reports."""
    now = now or datetime.now(timezone.utc)
    year, month = first_month(now, months)
    since = datetime(year, month, 1, tzinfo=WIB)
    rows = session.execute(select(Report.created_at, Report.region_code, Report.category, Report.victim,
                                  Report.status).where(Report.created_at >= since))
    tally: Counter = Counter()
    for created, region, category, victim, status in rows:
        tally[utc(created).astimezone(WIB).strftime("%Y-%m"), region, category, victim, status] += 1
    return tally


def shown(n: int, smallest: int) -> str:
    return str(n) if n >= smallest else f"<{smallest}"


def csv_text(tally: Counter, labels: Labels, smallest: int) -> str:
    merged: Counter = Counter()
    for (month, region, category, victim, status), n in tally.items():
        outcome = OUTCOMES[status]() if status in OUTCOMES else status
        merged[month, labels.region(region), labels.category(category), labels.victim(victim), outcome] += n
    out = io.StringIO()
    out.write("\ufeff")  # spreadsheet programs then read the names' letters right
    # Semicolons: Excel set to Indonesian (decimal comma) splits a CSV at its list separator, ";",
    # and would put a comma-separated row in one column. No `sep=;` line: other programs would
    # read it as a row (docs/console.md).
    writer = csv.writer(out, delimiter=SEPARATOR, lineterminator="\r\n")
    writer.writerow([_("Month"), _("Kabupaten/kota"), _("Category"), _("Victim group"), _("Outcome"),
                     _("Reports")])
    for key in sorted(merged):
        writer.writerow([*key, shown(merged[key], smallest)])
    return out.getvalue()
