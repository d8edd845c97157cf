"""A case's audit rows as sentences a case worker can act on, in their language:
"belum ada jawaban dari Polrestabes Palembang dalam 15 menit; diteruskan ke Polda Sumsel
PPA-PPO" instead of `escalated · router · polres_palembang -> polda_ppa_ppo`.

Audit rows are written by the router (gateway/cases/dispatch.py), the sender and the provider's
delivery reports (gateway/messaging, gateway/intake), the SMS desk, retention and the console;
their `detail` is a short machine text whose forms are read here. A row whose form is not known
still gets a plain sentence, never the raw codes."""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, Optional

from flask_babel import gettext as _

from gateway.console.labels import Labels

ROUTE_REASONS = {
    "covers the area": lambda: _("its area"),
    "nearest capable agency": lambda: _("the nearest agency that handles this kind of case"),
    "place unknown: province level": lambda: _("the place is not known, so the province level"),
    "child victim": lambda: _("the victim is a child"),
    "mother and baby": lambda: _("a mother and baby"),
    "migrant-worker case": lambda: _("a migrant-worker case"),
    "someone in danger now": lambda: _("someone is in danger now"),
}
_AGENCY_DETAIL = re.compile(r"^(?P<agency>[a-z0-9_]+): (?P<reason>.*?)(?P<place> \(place given\))?$")
_ESCALATED = re.compile(r"^(?P<below>[a-z0-9_]+) -> (?P<above>[a-z0-9_]+)")
_NO_RESPONDER = re.compile(r"^(?P<agency>[a-z0-9_]+) has no duty number; alerting (?P<above>[a-z0-9_]+)")
_CHAIN = re.compile(r"chain of (?P<agency>[a-z0-9_]+)")
_MESSAGE = re.compile(r"message (?P<id>\d+)")
_ALERT_NEXT = re.compile(r"^(?P<agency>[a-z0-9_]+): responder (?P<responder>\d+)")


# Who an SMS of a case went to: a case's SMS are not all to its reporter. A `reply` answers
# whoever texted, and a duty responder's TERIMA or SELESAI gets one too (gateway/intake/sms_desk.py).
class Recipient(StrEnum):
    REPORTER = "reporter"
    RESPONDER = "responder"
    UNKNOWN = "unknown"  # the reporter's number purged, say


REPORTER, RESPONDER, UNKNOWN = Recipient.REPORTER, Recipient.RESPONDER, Recipient.UNKNOWN


@dataclass(frozen=True)
class Sent:
    """An SMS of this case, as the timeline names it."""

    purpose: str
    responder: Optional[str]   # the duty number's name, for an alert or a reply to a duty number
    agency_id: Optional[str]
    to: Recipient = UNKNOWN


class Sentences:
    def __init__(self, labels: Labels, actor: Callable[[str], str], messages: dict[int, Sent],
                 responders: dict[int, str], deadline_minutes: int):
        self.labels, self.actor, self.messages = labels, actor, messages
        self.responders, self.deadline_minutes = responders, deadline_minutes

    def agency(self, agency_id: str) -> str:
        return self.labels.agency(agency_id)

    def _routed(self, detail: str) -> str:
        match = _AGENCY_DETAIL.match(detail)
        if not match:
            return _("Routing decided.")
        agency, reason = self.agency(match["agency"]), match["reason"]
        off_duty = re.fullmatch(r"([a-z0-9_]+) off duty", reason)
        if off_duty:
            text = _("Sent to %(agency)s, because %(closed)s is closed now.", agency=agency,
                     closed=self.agency(off_duty[1]))
        elif reason in ROUTE_REASONS:
            text = _("Sent to %(agency)s: %(reason)s.", agency=agency, reason=ROUTE_REASONS[reason]())
        else:
            text = _("Sent to %(agency)s.", agency=agency)
        if match["place"]:
            text += " " + _("(after the reporter named the place)")
        return text

    def _sms(self, action: str, detail: str) -> str:
        """Each SMS named by whom it went to and why; `sent` is the network's taking it, not its
        arrival: only `delivered` says it reached the phone."""
        purpose, _sep, state = action.rpartition("_")
        found = _MESSAGE.search(detail)
        sent = self.messages.get(int(found["id"])) if found else None
        ok = state in ("sent", "delivered")
        if purpose == "alert":
            to = self._alerted(sent)
            if state == "delivered":
                return _("Alert SMS to %(to)s reached the phone.", to=to)
            if state == "sent":
                return _("Alert SMS to %(to)s handed to the SMS network.", to=to)
            if state == "failed":
                return _("Alert SMS to %(to)s did not arrive; the next duty number is tried.", to=to)
            return _("Alert SMS to %(to)s could not be sent (%(state)s).", to=to, state=self.labels.message(state))
        if purpose == "feedback":
            return (_("SMS to the reporter that the case was taken up: sent.") if ok
                    else _("SMS to the reporter that the case was taken up: not sent."))
        if sent is not None and sent.to == RESPONDER:
            to = self._alerted(sent)
            return (_("Reply SMS to the duty number %(to)s: sent.", to=to) if ok
                    else _("Reply SMS to the duty number %(to)s: not sent (%(state)s).", to=to,
                           state=self.labels.message(state)))
        if sent is not None and sent.to == REPORTER:
            return (_("Reply SMS to the reporter: sent.") if ok
                    else _("Reply SMS to the reporter: not sent (%(state)s).", state=self.labels.message(state)))
        return (_("An SMS about this case: sent.") if ok
                else _("An SMS about this case: not sent (%(state)s).", state=self.labels.message(state)))

    def _alerted(self, sent: Optional[Sent]) -> str:
        if sent is None or sent.agency_id is None:
            return _("a duty number")
        return _("%(name)s, %(agency)s", name=sent.responder, agency=self.agency(sent.agency_id))

    def say(self, action: str, detail: str, actor: str) -> str:
        detail = detail or ""
        who = self.actor(actor)
        if action == "received":
            return _("Report received.")
        if action == "routed":
            return self._routed(detail)
        if action == "place_given":
            return _("The reporter named the place: %(region)s.", region=self.labels.region(detail))
        if action == "unassigned":
            match = _CHAIN.search(detail)
            return _("No duty number registered at %(agency)s or above it: nobody could be alerted. "
                     "Register duty numbers, or re-route.",
                     agency=self.agency(match["agency"]) if match else _("the agency"))
        if action == "no_responder":
            match = _NO_RESPONDER.match(detail)
            if match:
                return _("%(agency)s has no duty number registered; %(above)s alerted instead.",
                         agency=self.agency(match["agency"]), above=self.agency(match["above"]))
        if action == "escalated":
            match = _ESCALATED.match(detail)
            if match:
                return _("No answer from %(below)s within %(minutes)s minutes; passed on to %(above)s.",
                         below=self.agency(match["below"]), above=self.agency(match["above"]),
                         minutes=self.deadline_minutes)
        if action == "unanswered":
            agency = detail.split(":", 1)[0]
            return _("No answer from %(agency)s within %(minutes)s minutes, and there is no one above to pass "
                     "it on to.", agency=self.agency(agency), minutes=self.deadline_minutes)
        if action == "acknowledged":
            return _("%(who)s acknowledged the case for %(agency)s.", who=who, agency=self.agency(detail))
        if action == "closed_for_agency":
            return _("%(who)s closed the case for %(agency)s.", who=who, agency=self.agency(detail))
        if action == "closed":
            return _("%(who)s closed the case.", who=who)
        if action == "rerouted":
            return _("%(who)s re-routed the case to %(agency)s.", who=who,
                     agency=self.agency(detail.removeprefix("to ")))
        if action == "alert_next":
            match = _ALERT_NEXT.match(detail)
            if match:
                name = self.responders.get(int(match["responder"]), _("the next duty number"))
                return _("The alert did not arrive; sent again to %(name)s, %(agency)s.", name=name,
                         agency=self.agency(match["agency"]))
        if action == "no_next_responder":
            agency = detail.split(":", 1)[0]
            return _("The alert did not arrive, and every duty number from %(agency)s up was already tried.",
                     agency=self.agency(agency))
        if action == "send_released":
            return _("An SMS whose sending was cut off is sent again.")
        if action == "purged":
            return _("The reporter's number and words were removed after the retention period.")
        if re.fullmatch(r"[a-z]+_(sent|delivered|failed|rejected|suppressed)", action):
            return self._sms(action, detail)
        return _("Recorded by the system (%(what)s).", what=action.replace("_", " "))
