"""Filing a report: committed, with its routing job in the outbox, before any reference code
is shown. Idempotent per channel session, so an aggregator's retry of the final hop returns
the same code instead of a second report."""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Mapping, Optional

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from gateway.errors import LimitReached, ReportNotSaved
from gateway.limits import caller_key
from gateway.messaging import outbox
from gateway.store.models import AuditEvent, Outbox, Report
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

    def submit(self, new: NewReport, counted: Optional[bool] = None) -> str:
        """Return the report's reference code; raise ReportNotSaved if it is not durable, and
        LimitReached when the number has filed its reports for the day. The limit is counted
        here, where the report is made, whatever way the caller came: first, so that parallel
        final hops cannot all slip under it, and given back when no new report was made (a
        refusal, a failure, or a retried final hop that gets the code it was already shown).
        `counted`: the caller already counted it, with `Limiter.hit`'s answer (the USSD
        session's verdict and the count in one round trip)."""
        self._check(new.answers)
        rt = self.runtime
        who = caller_key(rt.vault, new.phone, new.raw_phone)
        key, limit = session_key(new.channel, new.session_id, who), rt.limits["reports"]
        if counted is None:
            counted = rt.limiter.hit(limit, who)
        if not counted:
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
        vault, a, db = self.runtime.vault, new.answers, self.runtime.db
        now = datetime.now(timezone.utc)
        report = {"channel": new.channel, "session_key": key, "category": a["category"], "victim": a["victim"],
                  "region_code": a["region"], "urgent": a["urgent"], "contact_ok": a["contact"],
                  "reporter_phone_enc": vault.encrypt(new.phone), "reporter_index": vault.blind_index(new.phone),
                  "lang": new.lang, "status": ReportStatus.RECEIVED, "trusted": False, "follow_ups": 0,
                  "created_at": now}
        owed = {"job": "route_report", **outbox.row_values()}
        audit = {"at": now, "actor": new.channel, "action": "received"}
        stale_connections = 0
        try:
            for attempt in range(5):
                # The session key is unique: a retried final hop fails the insert and finds its
                # report on the next attempt, without a look-up on the first.
                if attempt and (ref := self._filed(key)) is not None:
                    return ref, None
                ref = new_ref()
                try:
                    return ref, _file(db.engine, {**report, "ref": ref}, owed, audit)
                except IntegrityError:  # a retry of a filed report (found next time), or the code was taken
                    continue
                except DBAPIError as exc:
                    # A connection the server dropped (restarted) since its last use: the pool
                    # has let every such connection go, and a new one is tried once.
                    if not exc.connection_invalidated or stale_connections:
                        raise
                    stale_connections += 1
        except SQLAlchemyError as exc:
            log.error("report not saved: %s", type(exc).__name__)
            raise ReportNotSaved(type(exc).__name__) from None
        raise ReportNotSaved("no free reference code")


def _filing_statement():
    """The report, its outbox entry and its audit row in one statement (PostgreSQL): one round
    trip, and on a connection in autocommit no BEGIN and COMMIT round trips either, yet as
    atomic as a transaction, and committed when it returns."""
    report = insert(Report).values({c: bindparam(c) for c in REPORT_COLUMNS}).returning(Report.id).cte("filed")

    def rows_for(table, columns: tuple[str, ...], link: str, prefix: str):
        return insert(table).from_select(list(columns), select(*(
            report.c.id if c == link else bindparam(prefix + c, type_=table.c[c].type) for c in columns)))

    owed = rows_for(Outbox.__table__, OUTBOX_COLUMNS, "target_id", "outbox_").cte("owed")
    audited = rows_for(AuditEvent.__table__, AUDIT_COLUMNS, "report_id", "audit_").cte("audited")
    return select(report.c.id).add_cte(owed).add_cte(audited)


REPORT_COLUMNS = ("ref", "channel", "session_key", "category", "victim", "region_code", "urgent", "contact_ok",
                  "reporter_phone_enc", "reporter_index", "lang", "status", "trusted", "follow_ups", "created_at")
OUTBOX_COLUMNS = ("job", "target_id", "created_at", "enqueued_at", "attempts")  # not_before: none, due now
AUDIT_COLUMNS = ("at", "actor", "action", "report_id")
FILING = _filing_statement()
AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def _file(engine: Engine, report: dict, owed: dict, audit: dict) -> int:
    """Write the report, its outbox entry and its audit row, committed; the report's id.
    SQLite has no statements inside a WITH: three in one transaction (a file costs no round trips)."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            report_id = conn.execute(insert(Report).returning(Report.id), report).scalar_one()
            conn.execute(insert(Outbox), {**owed, "target_id": report_id})
            conn.execute(insert(AuditEvent), {**audit, "report_id": report_id})
            return report_id
    with engine.connect().execution_options(**AUTOCOMMIT) as conn:
        params = {**report, **{f"outbox_{k}": owed[k] for k in OUTBOX_COLUMNS if k != "target_id"},
                  **{f"audit_{k}": audit[k] for k in AUDIT_COLUMNS if k != "report_id"}}
        return conn.execute(FILING, params).scalar_one()
