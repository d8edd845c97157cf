"""Operators' page for community reach: village volunteers (tim relawan) and the awareness
broadcasts for opted-in residents, the console twin of `flask --app gateway volunteers|broadcast`.
Volunteer numbers are personal data: shown masked, never in full; removal takes effect at once."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Optional

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from gateway.cases import community
from gateway.console import auth
from gateway.console.i18n import WIB
from gateway.console.labels import Labels
from gateway.console.views import _runtime, audit_operator_action, bp, refusal
from gateway.errors import ConfigError
from gateway.phones import mask_numbers
from gateway.store.models import Broadcast, Message

RECENT_BROADCASTS = 20


@bp.get("/community")
@auth.roles("operator")
def community_page():
    rt = _runtime()
    volunteers = [(v, mask_numbers(rt.vault.decrypt(v.phone_enc))) for v in community.volunteers(rt)]
    with rt.db.session() as session:
        broadcasts = list(session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(RECENT_BROADCASTS)))
        states = session.execute(select(Message.broadcast_id, Message.state, func.count())
                                 .where(Message.broadcast_id.in_([b.id for b in broadcasts]))
                                 .group_by(Message.broadcast_id, Message.state)).all()
    delivery = {}
    for broadcast_id, state, count in states:
        delivery.setdefault(broadcast_id, {})[state] = count
    return render_template("console/community.html", volunteers=volunteers, broadcasts=broadcasts,
                           delivery=delivery, regions=Labels(rt.content).regions())


def _carry_out(action: Callable[[], Any], then: Callable[[Any], Optional[Response]]) -> Response:
    """A community form's action: a refusal (unknown region, bad number or time) is flashed as
    the form's error; `then` audits and confirms what was done, or shows a page of its own;
    else back to the community page."""
    try:
        done = action()
    except ConfigError as exc:
        flash(refusal(exc), "error")
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        if (page := then(done)) is not None:
            return page
    return redirect(url_for("console.community_page"))


@bp.post("/community/volunteers")
@auth.roles("operator")
def volunteer_add():
    def confirm(volunteer):
        audit_operator_action("volunteer_added", f"volunteer {volunteer.id} for {volunteer.region_code}")
        flash(_("Volunteer %(id)s added.", id=volunteer.id), "info")

    return _carry_out(lambda: community.add_volunteer(_runtime(), request.form.get("name", "").strip()[:100] or "-",
                                                      request.form.get("region", ""), request.form.get("phone", "")),
                      confirm)


@bp.post("/community/volunteers/<int:volunteer_id>/remove")
@auth.roles("operator")
def volunteer_remove(volunteer_id: int):
    if not community.remove_volunteer(_runtime(), volunteer_id):
        abort(404)
    audit_operator_action("volunteer_removed", f"volunteer {volunteer_id}")
    flash(_("Volunteer %(id)s removed: their next message is an ordinary resident's.", id=volunteer_id), "info")
    return redirect(url_for("console.community_page"))


@bp.post("/community/broadcasts")
@auth.roles("operator")
def broadcast_add():
    """A broadcast reaches every opted-in number of an area, at once when no time is given:
    the exact text, its length and how many it reaches are shown first, and sent on a yes."""
    form = request.form
    if form.get("confirm") != "yes":
        def preview(checked):
            body, send_at, (code, count) = checked
            return render_template("console/broadcast_confirm.html", body=body, send_at=send_at, region=code,
                                   count=count, send_at_field=form.get("send_at", ""), limit=community.SMS_LIMIT)

        return _carry_out(lambda: (community.broadcast_text(form.get("body", "")), _send_at(form.get("send_at", "")),
                                   community.audience(_runtime(), form.get("region", ""))), preview)

    def confirm(broadcast):
        audit_operator_action("broadcast_scheduled", f"broadcast {broadcast.id} for {broadcast.region_code}")
        flash(_("Broadcast %(id)s scheduled.", id=broadcast.id), "info")

    return _carry_out(lambda: community.schedule_broadcast(_runtime(), request.form.get("region", ""),
                                                           request.form.get("body", ""),
                                                           _send_at(request.form.get("send_at", ""))),
                      confirm)


def _send_at(value: str):
    """The form's `datetime-local` value, read as WIB like every time the console shows; empty: now."""
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=WIB)
    except ValueError:
        raise ValueError(_("Send time: use the form's date and time, e.g. 2026-12-01T08:00.")) from None
