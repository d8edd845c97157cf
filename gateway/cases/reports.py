"""Filing a report: committed, with its routing job in the outbox, before any reference code
is shown. Idempotent per channel session, so an aggregator's retry of the final hop returns
the same code instead of a second report."""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.errors import LimitReached, ReportNotSaved
from gateway.limits import caller_key
from gateway.messaging import outbox
from gateway.store.models import AuditEvent, Report
from gateway.store.states import ReportStatus

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, no 1/I: read aloud and typed on a keypad
REF_LENGTH = 6
VICTIMS = ("woman", "child", "man", "unknown", "mother_baby", "group")


def new_ref() -> str:
    return "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_LENGTH))


def session_key(channel: str, session_id: str, caller: str = "") -> str:
    """One report per channel session and caller (`caller`: gateway.limits.caller_key, a blind
    index). The caller is part of it because a session id can be sent again with another number:
    that must never answer with the first reporter's code."""
    return hashlib.sha256((f"{channel}:{session_id}:{caller}" if caller else f"{channel}:{session_id}").encode()
                          ).hexdigest()


@dataclass(frozen=True)
class NewReport:
    channel: str
    session_id: str
    phone: Optional[str]  # E.164 or None when the number could not be read
    answers: Mapping[str, object]
    lang: str = "id"
    raw_phone: Optional[str] = None  # as the channel sent it: an unreadable one is still limited


class ReportDesk:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def _check(self, answers: Mapping[str, object]) -> None:
        d = self.runtime.content.directory
        if answers.get("category") not in {c.id for c in d.categories} or answers.get("victim") not in VICTIMS \
                or answers.get("region") not in {r.code for r in d.regions} \
                or not isinstance(answers.get("urgent"), bool) or not isinstance(answers.get("contact"), bool):
            raise ReportNotSaved("incomplete answers")

    def _filed(self, key: str) -> Optional[str]:
        """The code of the report this session already filed, if any."""
        try:
            with self.runtime.db.session() as session:
                return session.scalar(select(Report.ref).where(Report.session_key == key))
        except SQLAlchemyError as exc:
            log.error("report look-up failed: %s", type(exc).__name__)
            raise ReportNotSaved(type(exc).__name__) from None

    def submit(self, new: NewReport) -> str:
        """Return the report's reference code; raise ReportNotSaved if it is not durable, and
        LimitReached when the number has filed its reports for the day. The limit is counted
        here, where the report is made, whatever way the caller came: first, so that parallel
        final hops cannot all slip under it, and given back when no new report was made (a
        refusal, a failure, or a retried final hop that gets the code it was already shown)."""
        self._check(new.answers)
        rt = self.runtime
        who = caller_key(rt.vault, new.phone, new.raw_phone)
        key, limit = session_key(new.channel, new.session_id, who), rt.limits["reports"]
        if not rt.limiter.hit(limit, who):
            rt.limiter.give_back(limit, who)
            if (ref := self._filed(key)) is not None:
                return ref
            log.info("report refused on %s: the number's reports for the day are used up", new.channel)
            raise LimitReached("reports per day")
        try:
            ref, report_id = self._insert(new, key)
        except BaseException:
            rt.limiter.give_back(limit, who)
            raise
        if report_id is None:  # the aggregator retried a final hop already answered
            rt.limiter.give_back(limit, who)
            return ref
        log.info("report %s received on %s", report_id, new.channel)
        outbox.enqueue(rt, "route_report", report_id, stamped=True)
        return ref

    def _insert(self, new: NewReport, key: str) -> tuple[str, Optional[int]]:
        """The code and the new report's id, or the code and None when this session had filed it."""
        vault, a = self.runtime.vault, new.answers
        try:
            for attempt in range(5):
                try:
                    with self.runtime.db.session() as session:
                        # The session key is unique: a retried final hop fails the insert and
                        # finds its report on the next attempt, without a look-up on the first.
                        if attempt and (ref := session.scalar(select(Report.ref).where(Report.session_key == key))):
                            return ref, None
                        ref = new_ref()
                        report = Report(
                            ref=ref, channel=new.channel, session_key=key, category=a["category"],
                            victim=a["victim"], region_code=a["region"], urgent=a["urgent"], contact_ok=a["contact"],
                            reporter_phone_enc=vault.encrypt(new.phone), reporter_index=vault.blind_index(new.phone),
                            lang=new.lang, status=ReportStatus.RECEIVED)
                        session.add(report)
                        session.flush()
                        outbox.add(session, "route_report", report.id)
                        session.add(AuditEvent(actor=new.channel, action="received", report_id=report.id))
                        return ref, report.id
                except IntegrityError:  # a retry of a filed report (found next time), or the code was taken
                    continue
        except SQLAlchemyError as exc:
            log.error("report not saved: %s", type(exc).__name__)
            raise ReportNotSaved(type(exc).__name__) from None
        raise ReportNotSaved("no free reference code")
