"""The console's pages under /console. Every page is server-rendered HTML that works without
script on a small phone; every form posts with a CSRF token (csrf.py) and redirects after."""
from __future__ import annotations

import logging
import re
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from gateway.cases import dispatch, roster
from gateway.console import accounts, actions, auth, casefile, cases, csrf, headers, stats, svg
from gateway.console.labels import Labels, minutes, wib
from gateway.errors import ConfigError
from gateway.messaging import outbox
from gateway.phones import mask_numbers

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
    return {"csrf_token": csrf.token, "staff": g.get("staff"), "labels": Labels(_runtime().content)}


bp.add_app_template_filter(wib, "wib")
bp.add_app_template_filter(minutes, "minutes")


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
        flash(f"Too many failed sign-ins from your network. Wait up to {window} minutes, then try again.", "error")
        return render_template("console/sign_in.html", next=again), 429
    if account is None:
        flash(f"Sign-in failed. After {accounts.MAX_FAILED_ATTEMPTS} failed attempts in a row an account is locked "
              f"for {accounts.LOCKOUT_SECONDS // 60} minutes on this device's network.", "error")
        return render_template("console/sign_in.html", next=again), 401
    auth.begin(account)
    log.info("console sign-in: staff %s", account.id)
    return redirect(again or url_for(HOME[account.role]))


@bp.post("/sign-out")
def sign_out():
    auth.sign_out()
    flash("Signed out.", "info")
    return redirect(url_for("console.sign_in"))


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
                           regions=directory.regions, categories=directory.categories)


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
                           agencies=rt.content.directory.agencies)


ACTIONS = {"acknowledge": actions.acknowledge, "close": actions.close}


@bp.post("/cases/<ref>/<action>")
@auth.roles(*CASE_ROLES)
def case_action(ref: str, action: str):
    rt = _runtime()
    if action not in ("acknowledge", "close", "note", "reroute"):
        abort(404)
    try:
        with rt.db.session() as session:
            report = _visible_case(session, ref)
            batch = outbox.Batch(rt, session)
            if action == "note":
                message = actions.add_note(rt, batch, g.staff, report, request.form.get("note", ""))
            elif action == "reroute":
                message = actions.reroute(rt, batch, g.staff, report, request.form.get("agency", ""))
            else:
                message = ACTIONS[action](rt, batch, g.staff, report)
        batch.enqueue()
        flash(message, "info")
    except actions.Refused as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.case", ref=ref))


# -- overview and service ------------------------------------------------------------------------

@bp.get("/overview")
@auth.roles("coordinator")
def overview():
    rt = _runtime()
    days = request.args.get("days", type=int)
    days = days if days in OVERVIEW_DAYS else 30
    labels = Labels(rt.content)
    with rt.db.session() as session:
        figures = stats.overview(session, days)
    charts = {
        "day": svg.columns(figures.by_day, f"Reports per day, last {days} days"),
        "region": svg.bars([(labels.region_short(c), n) for c, n in figures.by_region], "Reports per kabupaten/kota"),
        "category": svg.bars([(labels.category(c), n) for c, n in figures.by_category], "Reports per category"),
    }
    return render_template("console/overview.html", figures=figures, charts=charts, choices=OVERVIEW_DAYS,
                           queue=_queue_figures())


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
    """Duty numbers shown masked, as volunteers' are: enough to tell them apart on a screen
    someone else may see; the full number is in `flask --app gateway responders list`."""
    rt = _runtime()
    rows = [(duty, mask_numbers(duty.phone)) for duty in roster.listing(rt, inactive=True)]
    return render_template("console/responders.html", rows=rows, agencies=rt.content.directory.agencies)


@bp.post("/responders")
@auth.roles("operator")
def responder_add():
    rt = _runtime()
    try:
        added = roster.add(rt, request.form.get("agency", ""), request.form.get("name", "").strip()[:100],
                           request.form.get("phone", ""))
    except ConfigError as exc:
        flash(str(exc), "error")
    else:
        audit_operator_action("responder_added", f"responder {added.id} for {added.agency_id}")
        flash(f"Responder {added.id} added to {Labels(rt.content).agency(added.agency_id)}.", "info")
    return redirect(url_for("console.responders"))


@bp.post("/responders/<int:responder_id>/deactivate")
@auth.roles("operator")
def responder_deactivate(responder_id: int):
    if roster.remove(_runtime(), responder_id):
        audit_operator_action("responder_removed", f"responder {responder_id}")
        flash(f"Responder {responder_id} no longer receives alerts.", "info")
    else:
        abort(404)
    return redirect(url_for("console.responders"))


def audit_operator_action(action: str, detail: str) -> None:
    with _runtime().db.session() as session:
        dispatch.audit(session, None, action, detail, actor=g.staff.actor)


@bp.errorhandler(HTTPException)
def _error(exc: HTTPException):
    """Console errors as pages in the console's look, with their status kept."""
    return render_template("console/error.html", code=exc.code, title=exc.name, description=exc.description), exc.code
