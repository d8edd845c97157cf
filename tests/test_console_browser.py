"""The staff console in a real browser: headless Debian `chromium` driven by Playwright, against
the app served over real HTTP. Each role signs in through the form in Bahasa Indonesia, sees
what it may and no more; agency staff acknowledge a case with its button and find it in the
timeline, and cannot reach another agency's case by editing the URL. Every page of every role
is walked on a phone's width: none may scroll sideways, none may show the old English words.
Screenshots are kept in var/test-artifacts/console/ (ignored by git; each path is printed).

`make test` installs chromium when it is missing; without it this module is skipped."""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from console_seed import OKI_REPORTER, OKI_WORDS, OKU_REPORTER, OKU_WORDS, PASSWORD, add_staff, seed_cases
from werkzeug.serving import WSGIRequestHandler, make_server

from gateway.console import accounts

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts" / "console"
PHONE = {"width": 360, "height": 740}  # a cheap Android phone's screen, in CSS pixels
PHONES = ({"width": 390, "height": 844}, PHONE)

pytestmark = [pytest.mark.slow,  # a whole browser: `make test`, not the quick loop
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (`make test` installs "
                                                          "it: apt-get install chromium)")]


class QuietHandler(WSGIRequestHandler):
    """The served app logs its own requests; werkzeug's access lines would only add noise."""

    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """Still argon2id, at the smallest cost, as in test_console.py: sign-in four times over at the
    production cost would be most of this module's time."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def base_url(app, runtime):
    """The test app (its fixtures' database and Redis), seeded, on a free port of 127.0.0.1."""
    seed_cases(runtime)
    add_staff(runtime, "oki", "agency_staff", "polres_oki")
    add_staff(runtime, "oku", "agency_staff", "polres_oku")
    add_staff(runtime, "coordinator", "coordinator")
    add_staff(runtime, "operator", "operator")
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="console-http", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def open_as(browser, base_url):
    """open_as(login) -> a page of a fresh browser (own cookies) signed in through the form."""
    contexts = []

    def open_as(login: str, viewport: dict | None = None):
        context = browser.new_context(base_url=base_url, viewport=viewport or {"width": 1280, "height": 800})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/console/sign-in")
        assert page.locator("html").get_attribute("lang") == "id"
        page.get_by_label("Nama pengguna").fill(login)
        page.get_by_label("Kata sandi").fill(PASSWORD)
        page.get_by_role("button", name="Masuk").click()
        page.wait_for_load_state()
        assert "/console/sign-in" not in page.url, page.content()
        return page

    yield open_as
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def listed_refs(page) -> set[str]:
    hrefs = page.locator(".case-list a[href^='/console/cases/']").evaluate_all("links => links.map(a => a.pathname)")
    return {href.rsplit("/", 1)[1] for href in hrefs}


def nav(page) -> list[str]:
    return page.locator("header nav a").all_inner_texts()


def test_agency_staff_see_only_their_agencys_cases(open_as):
    page = open_as("oki")
    assert page.url.endswith("/console/cases")
    assert page.get_by_role("heading", level=1).inner_text() == "Kasus untuk Polres OKI"
    assert listed_refs(page) == {"KQ2MXA"}
    assert nav(page) == ["Kasus"]
    assert screenshot(page, "cases-agency-staff.png").stat().st_size > 0

    page.get_by_role("link", name="KQ2MXA").click()
    assert page.locator(".details").first.inner_text() == OKI_WORDS
    assert OKI_REPORTER in page.inner_text("main")

    other = open_as("oku")
    assert listed_refs(other) == {"ZT7PWB"}


def test_another_agencys_case_cannot_be_reached_by_editing_the_url(open_as):
    page = open_as("oki")
    page.get_by_role("link", name="KQ2MXA").click()
    edited = page.url.replace("KQ2MXA", "ZT7PWB")
    response = page.goto(edited)
    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Tidak ditemukan"
    assert OKU_WORDS not in page.content() and "ZT7PWB" not in page.inner_text("main")
    unknown = page.goto(edited.replace("ZT7PWB", "NOSUCH"))
    assert unknown.status == 404 and page.get_by_role("heading", level=1).inner_text() == "Tidak ditemukan"
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")  # the session's own
    for action in ("acknowledge", "close"):  # nor act on it with a valid form: the same answer
        assert page.request.post(f"{edited}/{action}", form={"csrf_token": token}).status == 404
    page.goto("/console/cases?status=")
    assert listed_refs(page) == {"KQ2MXA"}


def test_acknowledging_a_case_shows_in_its_timeline(open_as):
    page = open_as("oki")
    page.get_by_role("link", name="KQ2MXA").click()
    assert page.locator("h1 .badge").inner_text() == "menunggu diterima"
    page.get_by_role("button", name="Terima untuk Polres OKI").click()
    page.wait_for_load_state()

    assert "Diterima. Penerusan ke atas untuk instansi Anda dihentikan." in page.get_by_role("status").inner_text()
    assert page.locator("h1 .badge").inner_text() == "diterima"
    entry = page.locator("#timeline li", has_text="menerima kasus")
    assert entry.count() == 1 and "Oki (Polres OKI) menerima kasus untuk Polres OKI." in entry.inner_text()
    assert page.get_by_role("button", name="Terima untuk Polres OKI").count() == 0  # done: the button is gone
    screenshot(page, "case-acknowledged.png")

    page.get_by_role("link", name="Kasus", exact=True).click()
    assert page.locator(".case-list li", has_text="KQ2MXA").locator(".badge").inner_text() == "diterima"


def test_coordinator_sees_every_case_and_the_overview_charts(open_as):
    page = open_as("coordinator")
    assert page.url.endswith("/console/overview")
    assert nav(page) == ["Kasus", "Ringkasan", "Layanan"]
    assert page.locator("main figure.chart").count() == 3
    for chart in page.locator("main figure.chart svg").all():
        box = chart.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 10  # drawn, not an empty element
    assert page.locator(".bar-label", has_text="OKI").count() >= 1 and OKI_WORDS not in page.content()
    screenshot(page, "overview.png")

    page.get_by_role("link", name="Kasus", exact=True).click()
    assert listed_refs(page) == {"KQ2MXA", "ZT7PWB"}
    assert OKI_WORDS not in page.content() and OKU_WORDS not in page.content()  # a list is not a view of content
    screenshot(page, "cases-coordinator.png")

    page.get_by_role("link", name="ZT7PWB").click()
    assert page.locator(".details").first.inner_text() == OKU_WORDS
    assert OKU_REPORTER not in page.content()  # this reporter asked not to be contacted
    assert page.get_by_role("button", name=re.compile("^Terima")).count() == 0  # only the agency acknowledges


def test_operator_sees_no_report_content(open_as):
    page = open_as("operator")
    assert page.url.endswith("/console/responders")
    assert nav(page) == ["Nomor piket", "Komunitas", "Layanan"]
    for path in ("/console/responders", "/console/community", "/console/service"):
        assert page.goto(path).status == 200
        text = page.content()
        assert OKI_WORDS not in text and OKU_WORDS not in text and "KQ2MXA" not in text and "ZT7PWB" not in text
        assert OKI_REPORTER not in text
    for path in ("/console/cases", "/console/cases/KQ2MXA", "/console/overview"):
        response = page.goto(path)
        assert response.status == 404 and OKI_WORDS not in page.content(), path


# Words of the old English console: none may show on a page in Indonesian.
ENGLISH = ("Cases", "Overview", "Sign out", "Sign in", "Acknowledge", "Received", "Timeline", "Seen by", "Re-route",
           "Alerts", "Agencies", "Category", "Victim", "Contact", "Filter", "any", "routed", "delivered", "Reports",
           "Responders", "Duty numbers", "Community", "Service", "Volunteers", "Not Found", "someone in danger",
           "unknown area", "Add note", "Close", "jobs", "Deactivate", "Remove", "Schedule", "Send at", "median",
           "older", "newer", "Back to the console", "days", "Login", "Password", "Mobile number", "Agency",
           "waiting", "failed", "nothing yet", "per day")
WALK = {
    "oki": ["/console/cases", "/console/cases?status=open&urgent=yes", "/console/cases/KQ2MXA",
            "/console/no-such-page"],
    "coordinator": ["/console/overview", "/console/overview?days=90", "/console/cases", "/console/cases/ZT7PWB",
                    "/console/service", "/console/cases/NOSUCH"],
    "operator": ["/console/responders", "/console/responders?show=all", "/console/responders?agency=polres_oki",
                 "/console/responders/1/deactivate", "/console/community", "/console/service"],
}


def english_words(page) -> list[str]:
    """Old UI words in the page's text, leaving out what is marked as another language (the switch)."""
    text = page.evaluate("""() => {
        const copy = document.body.cloneNode(true);
        copy.querySelectorAll('[lang]').forEach(e => e.remove());
        return copy.innerText;
    }""")
    return [w for w in ENGLISH if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]


def check_phone_page(page, name: str) -> None:
    assert page.locator("html").get_attribute("lang") == "id", name
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px"
    assert english_words(page) == [], f"{name} shows English: {english_words(page)}"
    small = page.evaluate("""() => [...document.querySelectorAll('.chart *, .tile-map *, .legend')]
        .filter(e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
        .map(e => parseFloat(getComputedStyle(e).fontSize)).filter(size => size < 12)""")
    assert small == [], f"{name}: chart or map text below 12 px: {small}"
    assert page.locator("svg text").count() == 0, f"{name}: SVG text shrinks with its chart"
    screenshot(page, f"{name}.png")


@pytest.mark.parametrize("viewport", PHONES, ids=lambda v: f"{v['width']}px")
def test_every_page_of_every_role_fits_a_phone_in_indonesian(browser, base_url, open_as, viewport):
    width = viewport["width"]
    anonymous = browser.new_context(base_url=base_url, viewport=viewport)
    page = anonymous.new_page()
    page.goto("/console/sign-in")
    check_phone_page(page, f"{width}-sign-in")
    anonymous.close()
    for login, paths in WALK.items():
        page = open_as(login, viewport=viewport)
        for path in paths:
            page.goto(path)
            check_phone_page(page, f"{width}-{login}-{path.strip('/').replace('/', '-').replace('?', '-')}")
    # the re-route confirmation, reached the way a case worker does
    page = open_as("oki", viewport=viewport)
    page.goto("/console/cases/KQ2MXA")
    page.select_option("#agency", "polres_oku")
    page.get_by_role("button", name="Alihkan…").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Alihkan kasus KQ2MXA ke Polres OKU?"
    check_phone_page(page, f"{width}-oki-reroute-confirm")
    page.get_by_role("link", name="Tidak, kembali ke kasus").click()
    assert page.url.endswith("/console/cases/KQ2MXA")
    # the close confirmation: one tap on Tutup only asks
    page.get_by_role("button", name="Tutup untuk Polres OKI…").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Tutup kasus KQ2MXA untuk Polres OKI?"
    check_phone_page(page, f"{width}-oki-close-confirm")
    page.get_by_role("link", name="Tidak, kembali ke kasus").click()
    assert page.url.endswith("/console/cases/KQ2MXA") and page.locator("h1 .badge").inner_text() == "menunggu diterima"
    print(f"screenshots: {ARTIFACTS}")


def test_the_task_force_map_and_export_are_for_coordinators_only(open_as):
    page = open_as("coordinator", viewport=PHONES[0])
    assert page.locator(".tile-map a.tile").count() == 17
    oki = page.locator(".tile", has_text="OKI").filter(has_not_text="OKU").first
    assert oki.locator("b").inner_text() == "1"
    screenshot(page, "map-coordinator.png")
    oki.click()
    assert listed_refs(page) == {"KQ2MXA"} and "region=16.02" in page.url
    export = page.request.get("/console/export.csv?months=12")
    assert export.status == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text().lstrip("\ufeff").startswith("Bulan;Kabupaten/kota;Kategori;Kelompok korban;Hasil;")

    agency = open_as("oki", viewport=PHONES[0])
    for path in ("/console/overview", "/console/export.csv"):
        response = agency.goto(path)
        assert response.status == 404, path
        assert agency.get_by_role("heading", level=1).inner_text() == "Tidak ditemukan"


def test_the_language_switch_turns_the_console_english(open_as):
    page = open_as("oki", viewport=PHONES[1])
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Cases for Polres OKI"
    assert {"Cases", "Sign out", "Filter"} <= set(english_words(page))  # the check finds what it looks for
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    screenshot(page, "cases-english.png")
    page.get_by_role("button", name="Bahasa Indonesia").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Kasus untuk Polres OKI"
