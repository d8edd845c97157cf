"""The routing policy as tables: the shipped directory (config/) and a small hand-made one,
cases in, agency ids out. Pure function calls: no Flask, no Redis, no database."""
from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from expected_routes import LOCAL_PPA, POLICE
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cases.directory import Agency, Directory, Location, load_directory
from gateway.cases.reports import VICTIMS
from gateway.cases.routing import Case, distance_km, indonesian_holidays, on_duty, route

CONFIG = Path(__file__).resolve().parent.parent / "config"
WIB = ZoneInfo("Asia/Jakarta")
NEW_YORK = ZoneInfo("America/New_York")

# Wednesday 5 June 2024 is an ordinary working day; Saturday 8 June is a weekend day;
# Monday 17 June 2024 is Idul Adha (a national holiday in the `holidays` calendar).
DAY = datetime(2024, 6, 5, 10, 0, tzinfo=WIB)
NIGHT = datetime(2024, 6, 5, 23, 0, tzinfo=WIB)
SATURDAY = datetime(2024, 6, 8, 10, 0, tzinfo=WIB)
IDUL_ADHA = datetime(2024, 6, 17, 10, 0, tzinfo=WIB)
never = lambda day: False  # noqa: E731
always = lambda day: True  # noqa: E731

PPA_CATEGORIES = {"sexual_exploitation", "forced_labour", "bride", "child_labour", "domestic_worker", "forced_marriage",
                  "baby_selling", "other"}
SHIPPED = load_directory(CONFIG)  # at import: the property test draws its areas and categories from it


@pytest.fixture
def shipped() -> Directory:
    return SHIPPED


def ids(decisions) -> list[str]:
    return [d.agency_id for d in decisions]


def test_shipped_data_matches_the_tables_below(shipped):
    """The tables in this file were read from config/; fail loudly when the data moves."""
    assert [r.code for r in shipped.regions] == list(POLICE)
    for code, police in POLICE.items():
        assert [a.id for a in shipped.agencies if a.kind == "police" and a.is_local and a.covers(code)] == [police]
    local_ppa = {a.areas[0]: a.id for a in shipped.agencies if a.kind == "women_child_protection" and a.is_local}
    assert local_ppa == LOCAL_PPA
    assert all(set(shipped.agency(i).categories) == PPA_CATEGORIES for i in LOCAL_PPA.values())


# --- rule 1: the agency covering the area ------------------------------------------------------

@pytest.mark.parametrize("area", list(POLICE))
@pytest.mark.parametrize("when", [DAY, NIGHT], ids=["day", "night"])
def test_each_area_goes_first_to_its_own_police(shipped, area, when):
    """job_fraud is handled by no local unit but the polres, which is on duty around the clock."""
    decisions = route(Case(area, "job_fraud", "woman", False), shipped, when, never)
    assert ids(decisions) == [POLICE[area]]
    chosen = shipped.agency(decisions[0].agency_id)
    assert chosen.covers(area) and chosen.is_local and chosen.handles("job_fraud")
    assert decisions[0].reason == "covers the area"


@pytest.mark.parametrize("area", list(POLICE))
def test_every_category_in_every_area_reaches_a_covering_agency(shipped, area):
    for category in (c.id for c in shipped.categories):
        decisions = route(Case(area, category, "woman", False), shipped, DAY, never)
        first = shipped.agency(decisions[0].agency_id)
        assert first.covers(area) and first.handles(category), (area, category)
        expected = [POLICE[area]] + ([LOCAL_PPA[area]] if area in LOCAL_PPA and category in PPA_CATEGORIES else []) \
            + (["bp3mi_sumsel"] if category == "illegal_pmi" else [])
        assert ids(decisions) == expected, (area, category)


# --- the shipped directory as a table: case -> agencies, in order ------------------------------

SHIPPED_TABLE = [
    # (area, category, victim, urgent, when, is_holiday) -> expected ids
    ("16.71", "job_fraud", "woman", False, DAY, never, ["polres_palembang"]),
    ("16.71", "sexual_exploitation", "woman", False, DAY, never, ["polres_palembang", "uptd_ppa_palembang"]),
    # the UPTD PPA is off duty at night: its chain (uptd_ppa_prov, also office hours) ends at the Polda
    ("16.71", "sexual_exploitation", "woman", False, NIGHT, never, ["polres_palembang", "polda_ppa_ppo"]),
    ("16.71", "sexual_exploitation", "child", False, NIGHT, never,
     ["polres_palembang", "polda_ppa_ppo", "uptd_ppa_palembang"]),
    ("16.02", "bride", "woman", False, SATURDAY, never, ["polres_oki", "polda_ppa_ppo"]),
    ("16.74", "forced_labour", "woman", False, IDUL_ADHA, indonesian_holidays, ["polres_prabumulih", "polda_ppa_ppo"]),
    ("16.74", "forced_labour", "woman", False, DAY, always, ["polres_prabumulih", "polda_ppa_ppo"]),
    ("16.74", "forced_labour", "woman", False, DAY, indonesian_holidays, ["polres_prabumulih", "uptd_ppa_prabumulih"]),
    # child victims: the local UPTD PPA, else the provincial one, whatever the category
    ("16.01", "job_fraud", "child", False, DAY, never, ["polres_oku", "uptd_ppa_oku"]),
    ("16.03", "other", "child", False, DAY, never, ["polres_muara_enim", "uptd_ppa_prov"]),
    ("16.06", "other", "child", False, DAY, never, ["polres_muba", "uptd_ppa_muba"]),
    # illegal migrant workers: also BP3MI
    ("16.13", "illegal_pmi", "man", False, DAY, never, ["polres_muratara", "bp3mi_sumsel"]),
    ("16.13", "illegal_pmi", "child", True, NIGHT, never, ["polres_muratara", "uptd_ppa_prov", "bp3mi_sumsel"]),
    ("16.01", "illegal_pmi", "child", False, DAY, never, ["polres_oku", "uptd_ppa_oku", "bp3mi_sumsel"]),
    # job_fraud is in BP3MI's categories but only the illegal_pmi rule sends to it
    ("16.05", "job_fraud", "man", False, DAY, never, ["polres_musi_rawas"]),
    # urgent: the area's police is already the first choice, so it appears once
    ("16.01", "job_fraud", "unknown", True, NIGHT, never, ["polres_oku"]),
    ("16.06", "other", "unknown", True, DAY, never, ["polres_muba", "uptd_ppa_muba"]),
    # the NGO (WCC Palembang) covers 16.71 for these categories but never receives a report by itself
    ("16.71", "bride", "woman", True, DAY, never, ["polres_palembang", "uptd_ppa_palembang"]),
]


@pytest.mark.parametrize("area,category,victim,urgent,when,is_holiday,expected", SHIPPED_TABLE)
def test_shipped_directory_table(shipped, area, category, victim, urgent, when, is_holiday, expected):
    decisions = route(Case(area, category, victim, urgent), shipped, when, is_holiday)
    assert ids(decisions) == expected
    assert "wcc_palembang" not in ids(decisions)


def test_reasons_say_why(shipped):
    decisions = route(Case("16.71", "sexual_exploitation", "child", False), shipped, NIGHT, never)
    assert [d.reason for d in decisions] == ["covers the area", "uptd_ppa_palembang off duty", "child victim"]
    decisions = route(Case("16.13", "illegal_pmi", "child", False), shipped, DAY, never)
    assert [d.reason for d in decisions] == ["covers the area", "child victim", "migrant-worker case"]


@pytest.mark.parametrize("area", list(POLICE))
def test_child_victims_also_go_to_the_women_and_child_unit(shipped, area):
    decisions = route(Case(area, "social_media", "child", False), shipped, DAY, never)
    assert ids(decisions) == [POLICE[area], LOCAL_PPA.get(area, "uptd_ppa_prov")]
    assert route(Case(area, "social_media", "woman", False), shipped, DAY, never) == decisions[:1]


# --- rule 2: nobody covers the area: the nearest capable agency on duty -----------------------

def test_area_without_its_polres_goes_to_the_nearest_police(shipped):
    """Without Polres Pagar Alam, Lahat (41 km) beats Empat Lawang (51 km) and Palembang."""
    gap = dataclasses.replace(shipped, agencies=tuple(a for a in shipped.agencies if a.id != "polres_pagar_alam"))
    for when in (DAY, NIGHT):
        decisions = route(Case("16.72", "job_fraud", "woman", False), gap, when, never)
        assert ids(decisions) == ["polres_lahat"]
        assert decisions[0].reason == "nearest capable agency"


def _agency(id: str, kind: str, areas, categories, at: str, regions, hours="24/7", escalates_to=None) -> Agency:
    region = next(r for r in regions if r.code == at)
    return Agency(id=id, name=id, short=id, kind=kind, areas=areas, categories=categories, hours=hours,
                  location=Location(lat=region.lat, lng=region.lng, town=region.capital),
                  escalates_to=escalates_to, source="test")


@pytest.fixture(scope="module")
def small() -> Directory:
    """Four real areas and a handful of agencies with deliberate gaps:
    16.05 Musi Rawas has only a sexual-exploitation unit and an NGO; 16.72 Pagar Alam has an
    office-hours police post; 16.71 Palembang and 16.73 Lubuklinggau have 24/7 police."""
    regions = tuple(SHIPPED.region(code) for code in ("16.05", "16.71", "16.72", "16.73"))
    a = lambda *args, **kw: _agency(*args, regions=regions, **kw)  # noqa: E731
    agencies = (
        a("pol_plg", "police", ["16.71"], "all", "16.71"),
        a("pol_llg", "police", ["16.73"], "all", "16.73"),
        a("pos_pagar", "police", ["16.72"], "all", "16.72", hours="office", escalates_to="polda"),
        a("ppa_rawas", "women_child_protection", ["16.05", "16.73"], ["sexual_exploitation"], "16.73",
          hours="office", escalates_to="ppa_prov"),
        a("ngo_rawas", "ngo", ["16.05"], "all", "16.05"),
        a("ppa_prov", "women_child_protection", "all", "all", "16.71", hours="office"),
        a("polda", "police", "all", "all", "16.71"),
        a("bp3mi", "migrant_worker_protection", "all", ["illegal_pmi"], "16.71", hours="office"),
    )
    return dataclasses.replace(SHIPPED, regions=regions, agencies=agencies)


SMALL_TABLE = [
    # no local agency handles job_fraud in Musi Rawas (the NGO does not count): nearest is Lubuklinggau, 18 km
    ("16.05", "job_fraud", "woman", False, DAY, ["pol_llg"]),
    ("16.05", "sexual_exploitation", "woman", False, DAY, ["ppa_rawas"]),
    # the local unit and its whole chain are off duty: nearest capable agency on duty instead
    ("16.05", "sexual_exploitation", "woman", False, NIGHT, ["pol_llg"]),
    # no police covers 16.05 locally: someone in danger goes to the province-wide police
    ("16.05", "job_fraud", "woman", True, NIGHT, ["pol_llg", "polda"]),
    ("16.05", "job_fraud", "child", False, NIGHT, ["pol_llg", "ppa_rawas"]),
    ("16.71", "job_fraud", "child", False, DAY, ["pol_plg", "ppa_prov"]),
    ("16.71", "illegal_pmi", "man", False, NIGHT, ["pol_plg", "bp3mi"]),
    # an office-hours police post: off duty it escalates; in danger it is alerted whatever the hour
    ("16.72", "job_fraud", "woman", False, DAY, ["pos_pagar"]),
    ("16.72", "job_fraud", "woman", False, NIGHT, ["polda"]),
    ("16.72", "job_fraud", "woman", True, NIGHT, ["polda", "pos_pagar"]),
    ("16.72", "job_fraud", "woman", True, SATURDAY, ["polda", "pos_pagar"]),
]


@pytest.mark.parametrize("area,category,victim,urgent,when,expected", SMALL_TABLE)
def test_small_directory_table(small, area, category, victim, urgent, when, expected):
    assert ids(route(Case(area, category, victim, urgent), small, when, never)) == expected


@pytest.mark.parametrize("area", ["16.05", "16.71", "16.72", "16.73"])
@pytest.mark.parametrize("when", [DAY, NIGHT], ids=["day", "night"])
def test_nearest_is_the_closest_capable_agency_on_duty(small, area, when):
    """Checked against the distances themselves, so this holds for any directory."""
    region = small.region(area)
    dist = lambda a: distance_km(region.lat, region.lng, a.location.lat, a.location.lng)  # noqa: E731
    for category in ("job_fraud", "sexual_exploitation", "illegal_pmi"):
        for d in route(Case(area, category, "woman", False), small, when, never):
            if d.reason == "nearest capable agency":
                capable = [a for a in small.agencies if a.kind != "ngo" and a.handles(category)
                           and on_duty(a, small, when, never)]
                assert dist(small.agency(d.agency_id)) == min(map(dist, capable))


# --- office hours, in WIB ----------------------------------------------------------------------

OFFICE_TIMES = [
    (datetime(2024, 6, 5, 8, 0, tzinfo=WIB), never, True),  # opening time is inside
    (datetime(2024, 6, 5, 7, 59, tzinfo=WIB), never, False),
    (datetime(2024, 6, 5, 15, 59, tzinfo=WIB), never, True),
    (datetime(2024, 6, 5, 16, 0, tzinfo=WIB), never, False),  # closing time is outside
    (NIGHT, never, False),
    (SATURDAY, never, False),
    (datetime(2024, 6, 9, 10, 0, tzinfo=WIB), never, False),  # Sunday
    (DAY, always, False),
    (IDUL_ADHA, indonesian_holidays, False),
    (DAY, indonesian_holidays, True),
    # given in UTC: 03:00Z is 10:00 WIB, 10:00Z is 17:00 WIB
    (datetime(2024, 6, 5, 3, 0, tzinfo=timezone.utc), never, True),
    (datetime(2024, 6, 5, 10, 0, tzinfo=timezone.utc), never, False),
    # Friday 17:30 UTC is already Saturday 00:30 in WIB
    (datetime(2024, 6, 7, 17, 30, tzinfo=timezone.utc), never, False),
    # Monday 01:00 UTC is 08:00 WIB, but Idul Adha
    (datetime(2024, 6, 17, 1, 0, tzinfo=timezone.utc), indonesian_holidays, False),
    # Sunday evening in New York is Monday morning in Palembang
    (datetime(2024, 6, 2, 21, 0, tzinfo=NEW_YORK), never, True),
    (datetime(2024, 6, 2, 21, 0, tzinfo=timezone(timedelta(hours=-4))), never, True),
]


@pytest.mark.parametrize("now,is_holiday,expected", OFFICE_TIMES, ids=lambda v: v.isoformat() if
                         isinstance(v, datetime) else None)
def test_office_hours_in_wib(shipped, now, is_holiday, expected):
    office, around_the_clock = shipped.agency("uptd_ppa_palembang"), shipped.agency("polres_palembang")
    assert on_duty(office, shipped, now, is_holiday) is expected
    assert on_duty(around_the_clock, shipped, now, always) is True


def test_holiday_calendar_is_asked_about_the_wib_date(shipped):
    asked: list[date] = []
    now = datetime(2024, 6, 16, 21, 0, tzinfo=NEW_YORK)  # Sunday in New York, Monday 08:00 in WIB
    assert on_duty(shipped.agency("uptd_ppa_palembang"), shipped, now, lambda d: asked.append(d) or False)
    assert asked == [date(2024, 6, 17)]
    assert not on_duty(shipped.agency("uptd_ppa_palembang"), shipped, now)  # Idul Adha


def test_utc_time_on_another_wib_day_routes_like_wib_night(shipped):
    """The worker passes datetime.now(timezone.utc): Friday 17:30Z is Saturday in Palembang."""
    case = Case("16.71", "sexual_exploitation", "woman", False)
    friday_evening_utc = datetime(2024, 6, 7, 17, 30, tzinfo=timezone.utc)
    assert route(case, shipped, friday_evening_utc, never) == route(case, shipped, NIGHT, never)
    assert ids(route(case, shipped, friday_evening_utc, never)) == ["polres_palembang", "polda_ppa_ppo"]


# --- duplicates and order ----------------------------------------------------------------------

@pytest.mark.parametrize("when", [DAY, NIGHT], ids=["day", "night"])
def test_no_duplicates_and_same_answer_every_time(shipped, when):
    for area in POLICE:
        for category in ("other", "illegal_pmi"):
            case = Case(area, category, "child", True)
            first = route(case, shipped, when, never)
            assert len(set(ids(first))) == len(first), (area, category)
            assert all(route(case, shipped, when, never) == first for _ in range(3))


# --- great-circle distance ---------------------------------------------------------------------

def test_distance_palembang_lubuklinggau(shipped):
    """About 214 km as the crow flies (the road is about 300 km)."""
    plg, llg = shipped.region("16.71"), shipped.region("16.73")
    km = distance_km(plg.lat, plg.lng, llg.lat, llg.lng)
    assert 200 < km < 225
    assert km == pytest.approx(distance_km(llg.lat, llg.lng, plg.lat, plg.lng))
    # an equirectangular estimate is within a fraction of a percent at this scale
    x = math.radians(llg.lng - plg.lng) * math.cos(math.radians((plg.lat + llg.lat) / 2))
    assert km == pytest.approx(6371.0 * math.hypot(x, math.radians(llg.lat - plg.lat)), rel=1e-3)


@pytest.mark.parametrize("lat1,lng1,lat2,lng2,expected", [
    (-2.9878333, 104.7603333, -2.9878333, 104.7603333, 0.0),
    (0.0, 0.0, 1.0, 0.0, 6371.0 * math.pi / 180),
    (0.0, 0.0, 0.0, 180.0, 6371.0 * math.pi),
    (90.0, 0.0, -90.0, 0.0, 6371.0 * math.pi),
])
def test_distance_reference_points(lat1, lng1, lat2, lng2, expected):
    assert distance_km(lat1, lng1, lat2, lng2) == pytest.approx(expected, abs=1e-6)


# --- property: a report is never routed nowhere ------------------------------------------------

def _cases(directory: Directory):
    return st.builds(Case, region=st.sampled_from([r.code for r in directory.regions]),
                     category=st.sampled_from([c.id for c in directory.categories]),
                     victim=st.sampled_from(VICTIMS) | st.text(max_size=8), urgent=st.booleans())


# Years bounded: at 0001-01-01 or 9999-12-31 the conversion to WIB itself overflows `datetime`.
MOMENTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.timezones())


@settings(max_examples=300, deadline=None)
@given(case=_cases(SHIPPED), now=MOMENTS, is_holiday=st.sampled_from([indonesian_holidays, never, always]))
def test_every_report_reaches_someone(case, now, is_holiday):
    decisions = route(case, SHIPPED, now, is_holiday)
    chosen = [SHIPPED.agency(i) for i in ids(decisions)]
    assert chosen, case
    assert len(set(ids(decisions))) == len(decisions)
    assert all(a.kind != "ngo" for a in chosen)
    assert any(a.covers(case.region) and a.handles(case.category) for a in chosen)
    if case.urgent:
        assert any(a.kind == "police" and a.covers(case.region) for a in chosen)
    if case.victim == "child":
        assert any(a.kind == "women_child_protection" and a.covers(case.region) for a in chosen)
    if case.category == "illegal_pmi":
        assert "bp3mi_sumsel" in ids(decisions)
    for d, a in zip(decisions, chosen, strict=True):
        if d.reason == "covers the area":
            assert a.is_local and a.covers(case.region) and on_duty(a, SHIPPED, now, is_holiday)


UNKNOWN_PLACE = [
    # (category, victim, urgent, when) -> ids: an SMS report that never named its kabupaten/kota
    (("other", "unknown", False, DAY), ["polda_ppa_ppo"]),
    (("other", "unknown", False, NIGHT), ["polda_ppa_ppo"]),
    (("job_fraud", "child", True, NIGHT), ["polda_ppa_ppo", "uptd_ppa_prov"]),
    (("illegal_pmi", "woman", False, DAY), ["polda_ppa_ppo", "bp3mi_sumsel"]),
]


@pytest.mark.parametrize("case, expected", UNKNOWN_PLACE)
def test_unknown_place_goes_to_the_province_level(shipped, case, expected):
    category, victim, urgent, when = case
    decisions = route(Case(None, category, victim, urgent), shipped, when, never)
    assert [d.agency_id for d in decisions] == expected
    assert decisions[0].reason == "place unknown: province level"
    assert all(not shipped.agency(d.agency_id).is_local for d in decisions)


def test_extra_holidays_from_the_directory_close_office_hours(shipped):
    """Days the national calendar does not know (cuti bersama) are configured in agencies.yaml."""
    office = next(a for a in shipped.agencies if a.hours == "office")
    assert on_duty(office, shipped, DAY, never)
    hours = shipped.office_hours.model_copy(update={"extra_holidays": [DAY.date()]})
    closed = dataclasses.replace(shipped, office_hours=hours)
    assert not on_duty(office, closed, DAY, never)
    assert on_duty(office, closed, DAY + timedelta(days=1), never)
