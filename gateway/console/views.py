"""The console's pages under /console. Every page is server-rendered HTML that works without
script on a small phone; every form posts with a CSRF token (csrf.py) and redirects after."""
from __future__ import annotations

import logging
import math
import re
from datetime import timedelta
from functools import lru_cache

import yaml
from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from redis.exceptions import RedisError
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from gateway.cases import dispatch, roster
from gateway.console import accounts, actions, auth, casefile, cases, csrf, export, headers, i18n, stats, svg
from gateway.console.labels import Labels, minutes
from gateway.errors import ConfigError
from gateway.messaging import outbox
from gateway.phones import mask_numbers
from gateway.store.models import Assignment
from gateway.store.states import OPEN_ASSIGNMENTS

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")
bp.before_request(auth.load)
bp.before_request(csrf.protect)
HOME = {"agency_staff": "console.case_list", "coordinator": "console.overview", "operator": "console.responders"}
CASE_ROLES = ("agency_staff", "coordinator")
OVERVIEW_DAYS = (7, 30, 90)
BACKLOG_AGE = timedelta(minutes=5)  # outbox work older than this is shown to operators


def _runtime():
    return current_app.extensions["gateway"].runtime


@bp.after_request
def _headers(response):
    return headers.secure(response, _runtime().settings.production)


@bp.context_processor
def _globals():
    return {"csrf_token": csrf.token, "staff": g.get("staff"), "labels": Labels(_runtime().content),
            "lang": i18n.lang(), "languages": LANGUAGE_NAMES, "here": _safe_next(request.full_path.rstrip("?"))}


# Each language named in itself: a person who cannot read the page can still find their own.
LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "en": "English"}

bp.add_app_template_filter(i18n.wib, "wib")
bp.add_app_template_filter(i18n.day, "day")
bp.add_app_template_filter(minutes, "minutes")


@lru_cache(maxsize=4)
def console_config(config_dir) -> dict:
    """config/console.yaml: the map's tiles and the export's settings."""
    with open(config_dir / "console.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def _console_config() -> dict:
    return console_config(_runtime().settings.config_dir)


@bp.get("/")
def home():
    if g.staff is None:
        return redirect(url_for("console.sign_in"))
    return redirect(url_for(HOME[g.staff.role]))


# A console path and its query, in characters that need no quoting: no CR/LF or other control
# character (a header cannot carry them), no backslash or `//` (browsers read those as another
# host), no `%` (an encoded dot or slash could still climb out of /console/).
_NEXT = re.compile(r"/console/[A-Za-z0-9_\-./?=&]*")


def _safe_next(target: str) -> str:
    """Only a console path: never an open redirect to another site, never a header it breaks."""
    if not _NEXT.fullmatch(target) or "//" in target or "/." in target:
        return ""
    return target


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    # Flask answers HEAD with this view too, and CSRF lets HEAD through as a safe method:
    # only a POST may sign in.
    if request.method != "POST":
        return render_template("console/sign_in.html", next=_safe_next(request.args.get("next", "")))
    again = _safe_next(request.form.get("next", ""))
    try:
        account = accounts.sign_in(_runtime(), request.form.get("login", "").strip(), request.form.get("password", ""),
                                   request.remote_addr or "unknown")
    except accounts.Throttled:
        window = accounts.FAILED_SIGN_INS_PER_ADDRESS.window_seconds // 60
        flash(_("Too many failed sign-ins from your network. Wait up to %(n)s minutes, then try again.", n=window),
              "error")
        return render_template("console/sign_in.html", next=again), 429
    if account is None:
        flash(_("Sign-in failed. After %(tries)s failed attempts in a row an account is locked for %(n)s minutes "
                "on this device's network.", tries=accounts.MAX_FAILED_ATTEMPTS, n=accounts.LOCKOUT_SECONDS // 60),
              "error")
        return render_template("console/sign_in.html", next=again), 401
    auth.begin(account)
    log.info("console sign-in: staff %s", account.id)
    return redirect(again or url_for(HOME[account.role]))


@bp.post("/sign-out")
def sign_out():
    auth.sign_out()
    flash(_("Signed out."), "info")
    return redirect(url_for("console.sign_in"))


@bp.post("/language")
def language():
    """The language switch: kept with the account when signed in, else in a cookie for the
    sign-in page, so a shared phone's next user still starts from their own account's choice."""
    chosen = request.form.get("lang", "")
    back = _safe_next(request.form.get("next", "")) or url_for("console.home")
    if chosen not in i18n.LANGUAGES:
        return redirect(back)
    if g.staff is not None:
        accounts.set_language(_runtime(), g.staff.id, chosen)
    response = redirect(back)
    response.set_cookie(i18n.COOKIE, chosen, max_age=365 * 24 * 3600, path="/console", httponly=True,
                        samesite="Lax", secure=_runtime().settings.production)
    return response


# -- cases -----------------------------------------------------------------------------------

@bp.get("/cases")
@auth.roles(*CASE_ROLES)
def case_list():
    directory = _runtime().content.directory
    filters = cases.Filters.from_args(request.args, {r.code for r in directory.regions},
                                      {c.id for c in directory.categories})
    with _runtime().db.session() as session:
        rows, more = cases.listing(session, g.staff, filters)
    return render_template("console/cases.html", rows=rows, more=more, filters=filters, statuses=cases.STATUSES,
                           regions=_filter_regions(filters.region), categories=directory.categories,
                           ages=cases.AGE_CHOICES)


def _filter_regions(chosen: str) -> list:
    """The area filter's choices, in alphabetical order as in the USSD menu. Agency staff whose
    agency covers named areas (config/agencies.yaml `areas`) get only those, and the one chosen
    if a link named another; an agency covering `all` and coordinators get every area."""
    directory, labels = _runtime().content.directory, Labels(_runtime().content)
    if g.staff.role == "agency_staff" and g.staff.agency_id:
        areas = directory.agency(g.staff.agency_id).areas
        if areas != "all":
            return labels.regions({*areas, chosen} - {""})
    return labels.regions()


def _visible_case(session, ref: str):
    report = cases.get(session, g.staff, ref)
    if report is None:
        abort(404)
    return report


@bp.get("/cases/<ref>")
@auth.roles(*CASE_ROLES)
def case(ref: str):
    rt = _runtime()
    with rt.db.session() as session:
        report = _visible_case(session, ref)
        opened = casefile.open_case(rt, session, g.staff, report)
    return render_template("console/case.html", case=opened, report=opened.report,
                           agency_groups=_agency_groups(), deadline=_deadline(rt, opened.report))


def _deadline(rt, report) -> str:
    return f'{getattr(rt.content.directory.ack_deadline_minutes, "urgent" if report.urgent else "normal"):g}'


def _agency_groups() -> list[tuple[str, list]]:
    """Agencies by kind, for a choice list: police, protection units, social services..."""
    groups: dict[str, list] = {}
    for agency in _runtime().content.directory.agencies:
        groups.setdefault(agency.kind, []).append(agency)
    return list(groups.items())


ACTIONS = {"acknowledge": actions.acknowledge, "close": actions.close}


@bp.get("/cases/<ref>/<any(close, reroute):action>")
@auth.roles(*CASE_ROLES)
def case_action_reopened(ref: str, action: str):
    """A confirmation page opened again from the browser's history or by its address: back to
    the case, where the action starts (nothing is done by a GET)."""
    return redirect(url_for("console.case", ref=ref))


@bp.post("/cases/<ref>/<action>")
@auth.roles(*CASE_ROLES)
def case_action(ref: str, action: str):
    rt = _runtime()
    if action not in ("acknowledge", "close", "note", "reroute"):
        abort(404)
    if action == "reroute" and request.form.get("confirm") != "yes":
        return _confirm_reroute(rt, ref, request.form.get("agency", ""))
    if action == "close" and request.form.get("confirm") != "yes":
        return _confirm_close(rt, ref)
    try:
        with rt.db.session() as session:
            report = _visible_case(session, ref)
            batch = outbox.Batch(rt, session)
            if action == "note":
                message = actions.add_note(rt, batch, g.staff, report, request.form.get("note", ""))
            elif action == "reroute":
                message = actions.reroute(rt, batch, g.staff, report, request.form.get("agency", ""))
            elif action == "close" and request.form.get("note", "").strip():
                # What was done, asked on the confirmation page: kept as a note, with the closing
                # in one transaction, so a refused close leaves no note and a bad note no close.
                actions.add_note(rt, batch, g.staff, report, request.form.get("note", ""))
                message = actions.close(rt, batch, g.staff, report)
            else:
                message = ACTIONS[action](rt, batch, g.staff, report)
        batch.enqueue()
        flash(message, "info")
    except actions.Refused as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.case", ref=ref))


def _confirm_reroute(rt, ref: str, agency_id: str):
    """Re-routing alerts another agency's duty phones at once: say so, and ask once more."""
    agency = next((a for a in rt.content.directory.agencies if a.id == agency_id), None)
    with rt.db.session() as session:
        report = _visible_case(session, ref)
        if agency is None:
            flash(_("Choose an agency from the list."), "error")
            return redirect(url_for("console.case", ref=ref))
        holders = list(session.scalars(select(Assignment.agency_id).where(Assignment.report_id == report.id)))
        if agency.id in holders:
            flash(_("%(agency)s already has this case; nothing new was sent.", agency=agency.short), "info")
            return redirect(url_for("console.case", ref=ref))
        return render_template("console/reroute.html", report=report, agency=agency, holders=holders,
                               deadline=_deadline(rt, report))


def _confirm_close(rt, ref: str):
    """Closing cannot be undone in the console and stops the escalation: say what it closes and
    for whom the case stays open, and ask once more (the button sits under Acknowledge on a phone)."""
    with rt.db.session() as session:
        report = _visible_case(session, ref)
        if report.closed_at is not None:
            flash(_("The case was already closed."), "error")
            return redirect(url_for("console.case", ref=ref))
        assignments = list(session.scalars(select(Assignment).where(Assignment.report_id == report.id)
                                           .order_by(Assignment.id)))
        open_states = {str(s) for s in OPEN_ASSIGNMENTS}
        if g.staff.role == "agency_staff":
            share = set(dispatch.agencys_share(assignments, g.staff.agency_id))
            if not any(a.id in share and a.state in open_states for a in assignments):
                flash(_("Your agency has already closed its part of this case."), "error")
                return redirect(url_for("console.case", ref=ref))
            closing = sorted({a.agency_id for a in assignments if a.id in share and a.state in open_states})
            staying = sorted({a.agency_id for a in assignments if a.id not in share and a.state in open_states})
        else:
            closing = sorted({a.agency_id for a in assignments if a.state in open_states})
            staying = []
        return render_template("console/close.html", report=report, closing=closing, staying=staying,
                               acknowledged=report.acknowledged_at is not None)


# -- overview and service ------------------------------------------------------------------------

@bp.get("/overview")
@auth.roles("coordinator")
def overview():
    """The task force's page: the figures, the map of the 17 kabupaten/kota and the charts."""
    rt = _runtime()
    days = request.args.get("days", type=int)
    days = days if days in OVERVIEW_DAYS else 30
    labels = Labels(rt.content)
    with rt.db.session() as session:
        figures = stats.overview(session, days)
    age = f"{days}d"
    regions = [(labels.region(c), n, c) for c, n in figures.by_region]
    region_link = lambda i: url_for("console.case_list", region=regions[i][2], age=age)  # noqa: E731
    categories = figures.by_category
    category_link = lambda i: url_for("console.case_list", category=categories[i][0], age=age)  # noqa: E731
    empty = _("nothing yet")
    charts = {
        "day": svg.columns(figures.by_day, _("Reports per day, last %(n)s days", n=days), empty, i18n.short_day),
        "region": svg.bars([(name, n) for name, n, _c in regions], _("Reports per kabupaten/kota"), empty,
                           region_link),
        "category": svg.bars([(labels.category(c), n) for c, n in categories], _("Reports per category"), empty,
                             category_link),
    }
    settings = _console_config()["export"]
    return render_template("console/overview.html", figures=figures, charts=charts, choices=OVERVIEW_DAYS,
                           queue=_queue_figures(), tiles=_tiles(labels, dict(figures.by_region), age),
                           export_months=settings["months"], export_default=settings["default_months"])


MAP_LEVELS = 4  # colour steps above "no report"


def _tiles(labels: Labels, counts: dict[str, int], age: str) -> dict:
    """The tile map: each kabupaten/kota at its grid place with its count, a colour level
    (0 for none, else 1..MAP_LEVELS by share of the highest count) and its case-list link."""
    config = _console_config()
    top = max((n for code, n in counts.items() if code in config["tile_map"]), default=0)
    levels = min(MAP_LEVELS, top)  # with few reports, fewer steps: each step then holds at least one count
    tiles = []
    for code, (column, row) in config["tile_map"].items():
        n = counts.get(code, 0)
        level = math.ceil(levels * n / top) if n else 0
        breaks = config.get("tile_breaks", {}).get(code)
        name = Markup("\u00ad").join(breaks.split("|")) if breaks else labels.region(code)
        tiles.append({"code": code, "name": name, "n": n, "level": level, "column": column,
                      "row": row, "href": url_for("console.case_list", region=code, age=age)})
    legend = [(level, math.floor(top * (level - 1) / levels) + 1, math.ceil(top * level / levels))
              for level in range(1, levels + 1)]
    return {"tiles": tiles, "legend": legend, "unknown": counts.get("?", 0)}


@bp.get("/export.csv")
@auth.roles("coordinator")
def export_csv():
    """Anonymised monthly counts for the task force; each download is an audit row."""
    rt = _runtime()
    settings = _console_config()["export"]
    months = request.args.get("months", type=int)
    months = months if months in settings["months"] else settings["default_months"]
    with rt.db.session() as session:
        tally = export.counts(session, months)
        dispatch.audit(session, None, "exported", f"monthly counts csv, last {months} months, {len(tally)} groups",
                       actor=g.staff.actor)
    body = export.csv_text(tally, Labels(rt.content), settings["smallest_count_shown"])
    name = _("reports") + f"-{months}m.csv"
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _queue_figures() -> dict:
    """The RQ queue as operators need it; empty when Redis does not answer."""
    rt = _runtime()
    try:
        q = rt.queue
        return {"queued": q.count, "started": rt.redis.zcard(q.started_job_registry.key),
                "scheduled": rt.redis.zcard(q.scheduled_job_registry.key),
                "failed": rt.redis.zcard(q.failed_job_registry.key)}
    except RedisError:
        return {}


@bp.get("/service")
@auth.roles("coordinator", "operator")
def service():
    rt = _runtime()
    with rt.db.session() as session:
        figures = stats.overview(session, 7)
    owed = outbox.backlog(rt, BACKLOG_AGE)
    return render_template("console/service.html", figures=figures, queue=_queue_figures(), backlog=owed[:20],
                           backlog_total=len(owed), backlog_minutes=int(BACKLOG_AGE.total_seconds() // 60))


# -- responders (operator) -------------------------------------------------------------------------

@bp.get("/responders")
@auth.roles("operator")
def responders():
    """Duty numbers grouped by agency, with a filter, and shown masked, as volunteers' are:
    enough to tell them apart on a screen someone else may see; the full number is in
    `flask --app gateway responders list`. An agency with no active number is said so, with
    where its alerts go instead."""
    rt = _runtime()
    agencies = rt.content.directory.agencies
    chosen = request.args.get("agency", "")
    chosen = chosen if chosen in {a.id for a in agencies} else ""
    show = request.args.get("show", "active")
    show = show if show in ("active", "all", "none") else "active"
    by_agency: dict[str, list] = {}
    for duty in roster.listing(rt, inactive=True):
        by_agency.setdefault(duty.agency_id, []).append((duty, mask_numbers(duty.phone)))
    groups = []
    for agency in agencies:
        if chosen and agency.id != chosen:
            continue
        rows = by_agency.get(agency.id, [])
        active = sum(1 for duty, _m in rows if duty.active)
        if show == "none" and active:
            continue
        shown = rows if show == "all" else [(d, m) for d, m in rows if d.active]
        groups.append({"agency": agency, "rows": shown, "active": active,
                       "above": _above(rt.content.directory, agency.id)})
    return render_template("console/responders.html", groups=groups, agency_groups=_agency_groups(),
                           chosen=chosen, show=show)


@bp.post("/responders")
@auth.roles("operator")
def responder_add():
    rt = _runtime()
    try:
        added = roster.add(rt, request.form.get("agency", ""), request.form.get("name", "").strip()[:100],
                           request.form.get("phone", ""))
    except ConfigError as exc:
        flash(refusal(exc), "error")
    else:
        audit_operator_action("responder_added", f"responder {added.id} for {added.agency_id}")
        agency = Labels(rt.content).agency(added.agency_id)
        flash(_("Duty number %(id)s added to %(agency)s.", id=added.id, agency=agency), "info")
    return redirect(url_for("console.responders"))


@bp.get("/responders/<int:responder_id>/deactivate")
@auth.roles("operator")
def responder_deactivate_confirm(responder_id: int):
    """Removing a duty number can leave an agency with nobody to alert: the page says where
    its alerts go then, before anything changes."""
    rt = _runtime()
    active = roster.listing(rt)
    duty = next((d for d in active if d.id == responder_id), None)
    if duty is None:
        abort(404)
    others = sum(1 for d in active if d.agency_id == duty.agency_id and d.id != responder_id)
    return render_template("console/remove_duty.html", duty=duty, masked=mask_numbers(duty.phone), others=others,
                           above=_above(rt.content.directory, duty.agency_id))


def _above(directory, agency_id: str):
    """The short name of the agency an agency's alerts go to when it has no duty number; None at the top."""
    chain = directory.chain(agency_id)
    return chain[1].short if len(chain) > 1 else None


@bp.post("/responders/<int:responder_id>/deactivate")
@auth.roles("operator")
def responder_deactivate(responder_id: int):
    if request.form.get("confirm") != "yes":
        return redirect(url_for("console.responder_deactivate_confirm", responder_id=responder_id))
    if not roster.remove(_runtime(), responder_id):
        abort(404)
    audit_operator_action("responder_removed", f"responder {responder_id}")
    flash(_("Duty number %(id)s no longer receives alerts.", id=responder_id), "info")
    return redirect(url_for("console.responders"))


def audit_operator_action(action: str, detail: str) -> None:
    with _runtime().db.session() as session:
        dispatch.audit(session, None, action, detail, actor=g.staff.actor)


def refusal(exc: ConfigError) -> str:
    """A form's input refused by the shared code (whose words are English, for the command
    line), said in the staff member's language."""
    text = str(exc)
    if "not a valid phone number" in text:
        return _("That is not a valid mobile number. Write it as +62812… or 0812…")
    if text.startswith("unknown agency"):
        return _("Choose an agency from the list.")
    if text.startswith("unknown kabupaten/kota"):
        return _("Choose a kabupaten/kota from the list.")
    if "GSM-7" in text:
        return _("A broadcast is one plain SMS (GSM-7 letters only, no emoji) of at most 160 characters.")
    return _("Not saved: check the form and try again.")


ERRORS = {
    400: (lambda: _("The request could not be read"), lambda: _("Go back, reload the page and try again.")),
    403: (lambda: _("Not allowed"), lambda: _("Your account may not open this page.")),
    404: (lambda: _("Not found"), lambda: _("This page does not exist, or your account may not see it.")),
    405: (lambda: _("Not possible here"), lambda: _("This address does not take that kind of request.")),
    429: (lambda: _("Too many attempts"), lambda: _("Wait a few minutes, then try again.")),
    500: (lambda: _("Something went wrong"),
          lambda: _("The console could not finish this. Try again in a minute; if it happens again, tell the "
                    "operator.")),
}


def _error_page(code: int, description: str = ""):
    title, default = ERRORS.get(code, ERRORS[500] if code >= 500 else ERRORS[400])
    return render_template("console/error.html", code=code, title=title(), description=description or default()), code


@bp.errorhandler(HTTPException)
def _error(exc: HTTPException):
    """Console errors as pages in the console's look and the staff member's language, with
    their status kept. A description the console wrote itself (already translated) is kept."""
    own = exc.description if exc.description != type(exc).description else ""
    return _error_page(exc.code or 500, own)


@bp.errorhandler(Exception)
def _crash(exc: Exception):
    log.exception("console error on %s", request.path)
    return _error_page(500)


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def _outside_routes(exc: HTTPException):
    """An address under /console that no page answers: the console's page, in the person's
    language; any other address keeps the app's plain answer."""
    if not request.path.startswith("/console"):
        return exc
    auth.load()
    title, description = ERRORS[exc.code]
    # Outside the blueprint its context processor does not run: give the page its globals.
    return render_template("console/error.html", code=exc.code, title=title(), description=description(),
                           **_globals()), exc.code
