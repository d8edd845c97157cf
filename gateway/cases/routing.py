"""Routing policy: which agencies a report goes to. Pure: the directory, the case and the
time in, decisions out, so every rule can be tested as a table.

1. Agencies whose own areas include the report's kabupaten/kota, that handle its category and
   are on duty now. Off duty: the next agency up their escalation chain that is on duty.
2. None covers the area: the nearest capable agency on duty, by great-circle distance from the
   kabupaten/kota's capital.
3. A child victim, or a mother with her baby: also the women and child protection unit
   (local first, else provincial).
4. Illegal migrant-worker dispatch: also the migrant-worker protection unit.
5. Someone in danger now: also the police for that area, whatever the hour.
A report whose kabupaten/kota is unknown (an SMS that never named one) goes to the
province-level units, by the same rules.
NGOs receive nothing automatically: a report goes to a partner only by an operator's choice."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Callable, Iterable, Optional
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

from gateway.cases.directory import Agency, Directory

EARTH_RADIUS_KM = 6371.0
CHILD_VICTIMS = frozenset({"child", "mother_baby"})


@dataclass(frozen=True)
class Case:
    region: Optional[str]  # None: place unknown
    category: str
    victim: str
    urgent: bool


    @classmethod
    def of(cls, report) -> "Case":
        return cls(report.region_code, report.category, report.victim, report.urgent)


@dataclass(frozen=True)
class Decision:
    agency_id: str
    reason: str


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle (haversine) distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


@lru_cache(maxsize=8)
def _calendar(year: int):
    return holiday_calendars.country_holidays("ID", years=year)


def indonesian_holidays(day: date) -> bool:
    """National public holidays (the `holidays` package's calendar for Indonesia)."""
    return day in _calendar(day.year)


def on_duty(agency: Agency, directory: Directory, now: datetime,
            is_holiday: Callable[[date], bool] = indonesian_holidays) -> bool:
    if agency.hours == "24/7":
        return True
    hours = directory.office_hours
    local = now.astimezone(ZoneInfo(hours.timezone))
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    return (weekday in hours.days and hours.open <= local.time().replace(tzinfo=None) < hours.close
            and not is_holiday(local.date()) and local.date() not in hours.extra_holidays)


def route(case: Case, directory: Directory, now: datetime,
          is_holiday: Callable[[date], bool] = indonesian_holidays) -> list[Decision]:
    duty = lambda a: on_duty(a, directory, now, is_holiday)  # noqa: E731
    region = directory.region(case.region) if case.region else None
    agencies = [a for a in directory.agencies if a.kind != "ngo" and (region or not a.is_local)]
    decisions: list[Decision] = []

    def add(agency: Agency, reason: str) -> None:
        if all(d.agency_id != agency.id for d in decisions):
            decisions.append(Decision(agency.id, reason))

    def nearest(candidates: Iterable[Agency]) -> list[Agency]:
        if region is None:
            return list(candidates)
        return sorted(candidates, key=lambda a: distance_km(region.lat, region.lng, a.location.lat, a.location.lng))

    local = [a for a in agencies if a.is_local and a.covers(case.region) and a.handles(case.category)]
    for agency in local:
        if duty(agency):
            add(agency, "covers the area")
        else:
            backup = next((b for b in directory.chain(agency.id)[1:] if duty(b)), None)
            if backup:
                add(backup, f"{agency.id} off duty")
    if not decisions:
        capable = [a for a in agencies if a.handles(case.category) and duty(a)]
        if capable:
            add(nearest(capable)[0], "nearest capable agency" if region else "place unknown: province level")

    def add_kind(kind: str, reason: str) -> None:
        units = [a for a in agencies if a.kind == kind and (region is None or a.covers(case.region))]
        local_units = [a for a in units if a.is_local]
        if local_units or units:
            add(nearest(local_units or units)[0], reason)

    if case.victim in CHILD_VICTIMS:
        add_kind("women_child_protection", "child victim" if case.victim == "child" else "mother and baby")
    if case.category == "illegal_pmi":
        add_kind("migrant_worker_protection", "migrant-worker case")
    if case.urgent:
        add_kind("police", "someone in danger now")
    return decisions
