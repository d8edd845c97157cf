"""Filing a report: committed, with its routing job in the outbox, before any reference code
is shown. Idempotent per channel session, so an aggregator's retry of the final hop returns
the same code instead of a second report."""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Mapping, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import outbox
from .errors import ReportNotSaved
from .store.models import AuditEvent, Report

log = logging.getLogger(__name__)

REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, no 1/I: read aloud and typed on a keypad
REF_LENGTH = 6
VICTIMS = ("woman", "child", "man", "unknown", "mother_baby", "group")


def new_ref() -> str:
    return "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_LENGTH))


def session_key(channel: str, session_id: str) -> str:
    return hashlib.sha256(f"{channel}:{session_id}".encode()).hexdigest()


@dataclass(frozen=True)
class NewReport:
    channel: str
    session_id: str
    phone: Optional[str]  # E.164 or None when the number could not be read
    answers: Mapping[str, object]
    lang: str = "id"


class ReportDesk:
    def __init__(self, runtime):
        self.runtime = runtime

    def _check(self, answers: Mapping[str, object]) -> None:
        d = self.runtime.content.directory
        if answers.get("category") not in {c.id for c in d.categories} or answers.get("victim") not in VICTIMS \
                or answers.get("region") not in {r.code for r in d.regions} \
                or not isinstance(answers.get("urgent"), bool) or not isinstance(answers.get("contact"), bool):
            raise ReportNotSaved("incomplete answers")

    @staticmethod
    def _existing(session, key: str) -> Optional[str]:
        return session.scalar(select(Report.ref).where(Report.session_key == key))

    def submit(self, new: NewReport) -> str:
        """Return the report's reference code; raise ReportNotSaved if it is not durable."""
        self._check(new.answers)
        key = session_key(new.channel, new.session_id)
        vault, a = self.runtime.vault, new.answers
        try:
            for attempt in range(5):
                try:
                    with self.runtime.db.session() as session:
                        # The session key is unique: a retried final hop fails the insert and
                        # finds its report on the next attempt, without a look-up on the first.
                        if attempt and (ref := self._existing(session, key)) is not None:
                            return ref
                        ref = new_ref()
                        report = Report(
                            ref=ref, channel=new.channel, session_key=key, category=a["category"],
                            victim=a["victim"], region_code=a["region"], urgent=a["urgent"], contact_ok=a["contact"],
                            reporter_phone_enc=vault.encrypt(new.phone), reporter_index=vault.blind_index(new.phone),
                            lang=new.lang, status="received")
                        session.add(report)
                        session.flush()
                        outbox.add(session, "route_report", report.id)
                        session.add(AuditEvent(actor=new.channel, action="received", report_id=report.id))
                        report_id = report.id
                    break
                except IntegrityError:  # a retry of a filed report (found next time), or the code was taken
                    continue
            else:
                raise ReportNotSaved("no free reference code")
        except SQLAlchemyError as exc:
            log.error("report not saved: %s", type(exc).__name__)
            raise ReportNotSaved(type(exc).__name__) from None
        log.info("report %s received on %s", report_id, new.channel)
        if new.phone:
            self.runtime.limiter.hit(self.runtime.limits["reports"], vault.blind_index(new.phone))
        outbox.enqueue(self.runtime, "route_report", report_id, stamped=True)
        return ref
