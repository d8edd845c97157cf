"""Names for codes on console pages: regions, agencies, categories and victims come from
config/ (the same texts callers read, in English), times are shown in WIB."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")
LANG = "en"


class Labels:
    def __init__(self, content):
        self.directory, self.catalog = content.directory, content.catalog

    def region(self, code: Optional[str]) -> str:
        names = {r.code: r.name for r in self.directory.regions}
        return names.get(code, "unknown area") if code else "unknown area"

    def region_short(self, code: Optional[str]) -> str:
        """The everyday short name (OKI, Muba, Palembang): fits a chart's label column."""
        names = {r.code: r.short for r in self.directory.regions}
        return names.get(code, "unknown area") if code else "unknown area"

    def agency(self, agency_id: Optional[str]) -> str:
        names = {a.id: a.short for a in self.directory.agencies}
        return names.get(agency_id, agency_id or "")

    def category(self, category: Optional[str]) -> str:
        key = f"category.{category}"
        return self.catalog.text(LANG, key) if category and self.catalog.has(LANG, key) else (category or "not given")

    def victim(self, victim: Optional[str]) -> str:
        key = f"victim.{victim}"
        return self.catalog.text(LANG, key) if victim and self.catalog.has(LANG, key) else (victim or "")


def wib(moment: Optional[datetime], with_date: bool = True) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; every time stored is UTC
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(WIB)
    return local.strftime("%d %b %Y %H:%M WIB" if with_date else "%H:%M")


def minutes(value: Optional[float]) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.0f} min"
    return f"{value / 60:.1f} h"
