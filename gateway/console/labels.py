"""Names for codes on console pages, in the staff member's language.

Regions and agencies come from config/ (one display name each: a region's `short`, the name
callers pick from the USSD menu, and an agency's `short`), categories and victim groups from
config/messages in the page's language; states and the like from the console's catalog."""
from __future__ import annotations

from typing import Optional

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from gateway.console.i18n import lang

STATUS = {
    "incomplete": _l("waiting for the reporter's answer"),
    "received": _l("received, not routed yet"),
    "routed": _l("waiting for acknowledgement"),
    "unassigned": _l("no duty number reached"),
    "acknowledged": _l("acknowledged"),
    "closed": _l("closed"),
}
ASSIGNMENT = {
    "waiting": _l("waiting for acknowledgement"),
    "acknowledged": _l("acknowledged"),
    "escalated": _l("no answer in time: passed on"),
    "unanswered": _l("no answer in time, no one above"),
    "closed": _l("closed"),
}
MESSAGE = {
    "queued": _l("waiting to be sent"),
    "sending": _l("being sent"),
    "retry": _l("to be tried again"),
    "sent": _l("handed to the network, no word yet that it reached the phone"),
    "delivered": _l("reached the phone"),
    "failed": _l("failed"),
    "rejected": _l("refused by the SMS provider"),
    "suppressed": _l("not sent: the number sent STOP"),
}
BROADCAST = {"scheduled": _l("scheduled"), "sent": _l("sent")}
KIND = {
    "police": _l("Police"),
    "women_child_protection": _l("Women and child protection"),
    "social_services": _l("Social services"),
    "migrant_worker_protection": _l("Migrant worker protection"),
    "ngo": _l("Civil society"),
}
# Where a report came in, in the words staff use: the provider (Africa's Talking, 8x8) is not
# theirs to know. Keys are gateway.channels.base.Channel's values, and the short forms tests and
# older rows use.
CHANNEL = {"at-ussd": "USSD", "at-sms": "SMS", "8x8-sms": "SMS", "wa": "WhatsApp",
           "ussd": "USSD", "sms": "SMS", "whatsapp": "WhatsApp"}


class Labels:
    def __init__(self, content):
        self.directory, self.catalog = content.directory, content.catalog
        self._regions = {r.code: r.short for r in self.directory.regions}
        self._agencies = {a.id: a.short for a in self.directory.agencies}

    def region(self, code: Optional[str]) -> str:
        """The one display name of a kabupaten/kota on every console page, chart and CSV."""
        return self._regions.get(code, _("area not known")) if code else _("area not known")

    region_short = region

    def agency(self, agency_id: Optional[str]) -> str:
        return self._agencies.get(agency_id, agency_id or "")

    def _config_text(self, prefix: str, key: Optional[str], missing: str) -> str:
        name = f"{prefix}.{key}"
        return self.catalog.text(lang(), name) if key and self.catalog.has(lang(), name) else (key or missing)

    def category(self, category: Optional[str]) -> str:
        return self._config_text("category", category, _("not given"))

    def victim(self, victim: Optional[str]) -> str:
        return self._config_text("victim", victim, _("not given"))

    def status(self, status: str) -> str:
        return str(STATUS.get(status, status))

    def assignment(self, state: str) -> str:
        return str(ASSIGNMENT.get(state, state))

    def message(self, state: str) -> str:
        return str(MESSAGE.get(state, state))

    def broadcast(self, state: str) -> str:
        return str(BROADCAST.get(state, state))

    def kind(self, kind: str) -> str:
        return str(KIND.get(kind, kind))

    @staticmethod
    def channel(channel: Optional[str]) -> str:
        return CHANNEL.get(channel or "", channel or "")

    def regions(self, codes: Optional[set[str]] = None) -> list:
        """Kabupaten/kota in alphabetical order of their display name, as the USSD menu lists
        them; only `codes` when given."""
        return sorted((r for r in self.directory.regions if codes is None or r.code in codes),
                      key=lambda r: r.short.lower())


def minutes(value: Optional[float]) -> str:
    if value is None:
        return "—"
    if value < 120:
        return _("%(n)s min", n=f"{value:.0f}")
    return _("%(n)s h", n=f"{value / 60:.1f}")
