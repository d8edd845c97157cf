"""Reference data from config/: regions, report categories, the agency directory, the national
help-line numbers and the legal statements shown to residents.

Loaded and validated once at start-up. Every problem names its file, entry and field, so an
operator editing YAML sees exactly what to fix. An agency still without a sourced number is a
warning, listed by `flask --app gateway validate-config`, because the service may run while an
operator still hunts for a number, but nobody should forget that it is missing. A national
number or a legal statement without a source is an error: what the hotline tells a frightened
person must be true, so it refuses to say it. A source checked more than a year ago is a
warning: numbers and laws change."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Literal, Optional, Union

import phonenumbers
import yaml
from phonenumbers import shortnumberinfo
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import ConfigError

ALL = "all"
KINDS = ("police", "women_child_protection", "social_services", "migrant_worker_protection", "ngo")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Kecamatan(_Strict):
    code: str
    name: str


class Region(_Strict):
    code: str = Field(pattern=r"^16\.\d{2}$")
    bps_code: str = Field(pattern=r"^16\d{2}$")
    name: str
    type: Literal["kabupaten", "kota"]
    short: str = Field(max_length=16)
    aliases: list[str]
    capital: str
    lat: float = Field(ge=-6, le=-1)
    lng: float = Field(ge=101, le=107)
    source: str
    capital_source: str
    coords_source: str
    kecamatan_source: str
    kecamatan: list[Kecamatan]


class Location(_Strict):
    lat: float = Field(ge=-11, le=6)
    lng: float = Field(ge=95, le=141)
    town: str


class Agency(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    short: str = Field(max_length=30)
    kind: Literal[KINDS]
    areas: Union[Literal["all"], list[str]]
    categories: Union[Literal["all"], list[str]]
    location: Location
    hours: Literal["24/7", "office"]
    public_phone: Optional[str] = None
    public_phone_note: Optional[str] = None
    public_phone_checked: Optional[date] = None  # when someone last confirmed the number
    escalates_to: Optional[str] = None
    source: str

    def covers(self, region: str) -> bool:
        return self.areas == ALL or region in self.areas

    def handles(self, category: str) -> bool:
        return self.categories == ALL or category in self.categories

    @property
    def is_local(self) -> bool:
        return self.areas != ALL


class Category(_Strict):
    id: str = Field(pattern=r"^[a-z_]+$")
    keywords: list[str]


RECHECK_AFTER = timedelta(days=365)  # a number or a law checked longer ago is flagged


class AreaSource(_Strict):
    source: str = Field(min_length=1)
    checked: date


class Number(_Strict):
    """A national help-line number (config/numbers.yaml). Texts name it as `{n_<id>}`."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    dial: str = Field(pattern=r"^[0-9][0-9-]*[0-9]$")
    hours: str
    status: Literal["sourced", "to_verify"] = "sourced"
    note: Optional[str] = None
    source: str = Field(min_length=1)
    checked: date
    areas: Optional[dict[str, AreaSource]] = None  # only where it works (112): each with its source

    @property
    def shown(self) -> bool:
        return self.status == "sourced"

    def serves(self, region: str) -> bool:
        return self.areas is None or region in self.areas


class Fact(_Strict):
    """A legal statement or procedural fact shown to residents (config/rights.yaml)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    keys: list[str] = []
    law: Optional[str] = None
    articles: Optional[str] = None
    says: str
    status: Literal["sourced", "to_verify"] = "sourced"
    source: str = Field(min_length=1)
    checked: date

    @property
    def pasal(self) -> set[str]:
        """The article numbers it rests on: `Pasal 76I, Pasal 88` -> {'76I', '88'}."""
        return set(re.findall(r"Pasal (\d+[A-Z]?)", self.articles or ""))


class OfficeHours(_Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]
    open: time
    close: time
    timezone: str
    source: str
    # Days closed beyond the national calendar (cuti bersama, provincial holidays), as the
    # operator learns them each year.
    extra_holidays: list[date] = []


class AckDeadlines(_Strict):
    urgent: float = Field(gt=0)
    normal: float = Field(gt=0)


@dataclass(frozen=True)
class Directory:
    regions: tuple[Region, ...]
    categories: tuple[Category, ...]
    agencies: tuple[Agency, ...]
    office_hours: OfficeHours
    ack_deadline_minutes: AckDeadlines
    warnings: tuple[str, ...] = ()
    numbers: tuple[Number, ...] = ()
    facts: tuple[Fact, ...] = ()

    def public_phones(self) -> list[str]:
        """Every number residents are told: the help-lines and the agencies' public numbers."""
        return [n.dial for n in self.numbers] + [a.public_phone for a in self.agencies if a.public_phone]

    def number(self, number_id: str) -> Number:
        return next(n for n in self.numbers if n.id == number_id)

    def region(self, code: str) -> Region:
        return next(r for r in self.regions if r.code == code)

    def agency(self, agency_id: str) -> Agency:
        return next(a for a in self.agencies if a.id == agency_id)

    def chain(self, agency_id: str) -> list[Agency]:
        """The agency, then each escalation target above it, up to the province level."""
        out = [self.agency(agency_id)]
        while out[-1].escalates_to:
            out.append(self.agency(out[-1].escalates_to))
        return out


def _read(path: Path, model, key: str, problems: list[str]):
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = []
    for i, entry in enumerate(raw.get(key) or []):
        name = entry.get("id") or entry.get("code") or f"#{i + 1}" if isinstance(entry, dict) else f"#{i + 1}"
        try:
            items.append(model(**entry))
        except (ValidationError, TypeError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
            problems += [f"{path.name}: {key} {name}: {'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}"
                         for e in errors]
    if not items:
        problems.append(f"{path.name}: no {key}")
    return raw, items


def phone_problem(number: str) -> Optional[str]:
    """None when `number` is a valid Indonesian short code (110, 129) or E.164 number."""
    digits = number.replace("-", "").replace(" ", "")
    if digits.isdigit() and len(digits) <= 5:
        ok = shortnumberinfo.is_possible_short_number_for_region(phonenumbers.parse(digits, "ID"), "ID")
        return None if ok else f"{number!r} is not a valid Indonesian short number"
    try:
        parsed = phonenumbers.parse(number, "ID")
    except phonenumbers.NumberParseException as exc:
        return f"{number!r} is not a phone number ({exc})"
    if not phonenumbers.is_valid_number(parsed):
        return f"{number!r} is not a valid phone number"
    if number != phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164):
        return f"{number!r} must be written in E.164 (+62...)"
    return None


def dial_problem(dial: str) -> Optional[str]:
    """None when `dial` is a number a resident can dial in Indonesia (110, 08111-129-129)."""
    digits = dial.replace("-", "")
    if len(digits) <= 5:
        ok = shortnumberinfo.is_possible_short_number_for_region(phonenumbers.parse(digits, "ID"), "ID")
        return None if ok else f"{dial!r} is not a valid Indonesian short number"
    if not phonenumbers.is_possible_number(phonenumbers.parse(digits, "ID")):
        return f"{dial!r} is not a possible Indonesian number"
    return None


def _source_problem(source: str) -> Optional[str]:
    """A source must say where: a link a reviewer can open."""
    if "http" not in source or source.strip().lower().startswith("unverified"):
        return "no source: give the public page (https://...) that says it"
    return None


def _stale(checked: date, today: date) -> bool:
    return today - checked > RECHECK_AFTER


def _read_entries(path: Path, model, key: str, holds: str, problems: list[str]) -> list:
    """A file of sourced entries with unique ids; a missing file or a repeated id is a problem."""
    if not path.exists():
        problems.append(f"{path.name}: missing ({holds})")
        return []
    _, entries = _read(path, model, key, problems)
    ids = [e.id for e in entries]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"{path.name}: {key} {dup}: id: used twice")
    return entries


def _check_sourced(entry, where: str, today: date, problems: list[str], warnings: list[str], again: str) -> None:
    """A fact needs a source, and a fresh enough `checked` date (else a warning to `again`)."""
    if why := _source_problem(entry.source):
        problems.append(f"{where}source: {why}")
    if _stale(entry.checked, today):
        warnings.append(f"{where}checked: {entry.checked} is more than a year ago; {again}")


def load_numbers(config_dir: Path, codes: set[str], problems: list[str], warnings: list[str],
                 today: date) -> list[Number]:
    numbers = _read_entries(config_dir / "numbers.yaml", Number, "numbers",
                            "the national help-line numbers and their sources", problems)
    for n in numbers:
        where = f"numbers.yaml: numbers {n.id}: "
        _check_sourced(n, where, today, problems, warnings, "confirm it again")
        if why := dial_problem(n.dial):
            problems.append(f"{where}dial: {why}")
        if n.status == "to_verify":
            warnings.append(f"{where}to verify by calling it; not shown to residents")
        for code, area in (n.areas or {}).items():
            if code not in codes:
                problems.append(f"{where}areas: unknown area code {code!r}")
            _check_sourced(area, f"{where}areas.{code}.", today, problems, warnings, "confirm it again")
    return numbers


def load_facts(config_dir: Path, problems: list[str], warnings: list[str], today: date) -> list[Fact]:
    facts = _read_entries(config_dir / "rights.yaml", Fact, "facts",
                          "the legal statements shown to residents and their sources", problems)
    for f in facts:
        where = f"rights.yaml: facts {f.id}"
        _check_sourced(f, f"{where}: ", today, problems, warnings, "check the law again")
        if f.law and not f.pasal:
            problems.append(f"{where}: articles: name each article as `Pasal <n>`")
        if f.status == "to_verify" and f.keys:
            problems.append(f"{where}: keys: a fact to verify is shown to nobody; remove {f.keys}")
        if f.status == "to_verify":
            warnings.append(f"{where}: to verify against the law's text; not shown to residents")
    return facts


def load_directory(config_dir: Path, today: Optional[date] = None) -> Directory:
    config_dir = Path(config_dir)
    problems: list[str] = []
    _, regions = _read(config_dir / "regions.yaml", Region, "regions", problems)
    _, categories = _read(config_dir / "categories.yaml", Category, "categories", problems)
    raw, agencies = _read(config_dir / "agencies.yaml", Agency, "agencies", problems)
    hours = deadlines = None
    try:
        hours = OfficeHours(**raw.get("office_hours", {}))
        deadlines = AckDeadlines(**raw.get("ack_deadline_minutes", {}))
    except ValidationError as exc:
        problems += [f"agencies.yaml: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]

    warnings: list[str] = []
    codes = {r.code for r in regions}
    cats = {c.id for c in categories}
    ids = [a.id for a in agencies]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"agencies.yaml: agencies {dup}: id: used twice")
    for dup in sorted({r.code for r in regions if [x.code for x in regions].count(r.code) > 1}):
        problems.append(f"regions.yaml: regions {dup}: code: used twice")
    for a in agencies:
        where = f"agencies.yaml: agencies {a.id}"
        for code in (a.areas if a.is_local else []):
            if code not in codes:
                problems.append(f"{where}: areas: unknown area code {code!r}")
        for cat in (a.categories if a.categories != ALL else []):
            if cat not in cats:
                problems.append(f"{where}: categories: unknown category {cat!r}")
        if a.escalates_to and a.escalates_to not in ids:
            problems.append(f"{where}: escalates_to: unknown agency {a.escalates_to!r}")
        if a.public_phone and (why := phone_problem(a.public_phone)):
            problems.append(f"{where}: public_phone: {why}")
        if not a.public_phone:
            warnings.append(f"{where}: public_phone: none with a public source; the operator must fill it")
        if a.source.startswith("unverified"):
            warnings.append(f"{where}: source: unverified; confirm before go-live")
        if a.public_phone and a.is_local and a.public_phone_checked is None:
            warnings.append(f"{where}: public_phone: shown to residents but never confirmed; call it and "
                            f"record the date in public_phone_checked")
        elif a.public_phone_checked and _stale(a.public_phone_checked, today or date.today()):
            warnings.append(f"{where}: public_phone_checked: more than a year ago; confirm it again")
    by_id = {a.id: a for a in agencies}
    for a in agencies:
        seen, node = [a.id], a
        while node.escalates_to in by_id:
            node = by_id[node.escalates_to]
            if node.id in seen:
                problems.append(f"agencies.yaml: agencies {a.id}: escalates_to: cycle {' -> '.join(seen + [node.id])}")
                break
            seen.append(node.id)
    for r in regions:
        if not any(a.covers(r.code) and a.is_local for a in agencies):
            warnings.append(f"regions.yaml: regions {r.code}: no local agency; reports go to the nearest one")
    today = today or date.today()
    numbers = load_numbers(config_dir, codes, problems, warnings, today)
    facts = load_facts(config_dir, problems, warnings, today)
    if problems:
        raise ConfigError(problems)
    return Directory(tuple(regions), tuple(categories), tuple(agencies), hours, deadlines, tuple(warnings),
                     tuple(numbers), tuple(facts))
