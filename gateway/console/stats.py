"""The coordinator's overview, computed from the database on each visit: reports per
kabupaten/kota, per category and per day, time to acknowledgement (median and 90th
percentile), open unacknowledged cases and the alert delivery failure rate. Counts only:
nothing here decrypts anything."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.console.casefile import utc
from gateway.console.i18n import WIB
from gateway.store.models import Message, Report
from gateway.store.states import OPEN_REPORTS, MessageState

FAILED = (MessageState.FAILED, MessageState.REJECTED)
# Alerts whose fate is known.
FINISHED = (MessageState.SENT, MessageState.DELIVERED, MessageState.FAILED, MessageState.REJECTED)


@dataclass(frozen=True)
class Overview:
    days: int
    total: int
    by_region: list[tuple[str, int]]     # code, count
    by_category: list[tuple[str, int]]
    by_day: list[tuple[date, int]]
    ack_median_minutes: Optional[float]
    ack_p90_minutes: Optional[float]
    acknowledged: int
    open_unacknowledged: int
    oldest_open: Optional[datetime]
    alerts_finished: int
    alerts_failed: int

    @property
    def failure_rate(self) -> Optional[float]:
        return self.alerts_failed / self.alerts_finished if self.alerts_finished else None


def percentile(values: list[float], p: float) -> Optional[float]:
    """Nearest-rank percentile (p in 0..100): an actual observed value, no interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats creeping in
    return ordered[int(rank) - 1]


def overview(session: Session, days: int, now: Optional[datetime] = None) -> Overview:
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    recent = Report.created_at >= since
    count = lambda column: list(session.execute(  # noqa: E731
        select(column, func.count()).where(recent).group_by(column).order_by(func.count().desc())).all())
    created = [utc(c) for c in session.scalars(select(Report.created_at).where(recent))]
    day = lambda moment: moment.astimezone(WIB).date()  # noqa: E731  (calendar days as staff live them)
    per_day: dict[date, int] = {day(now - timedelta(days=i)): 0 for i in range(days - 1, -1, -1)}
    for moment in created:
        if day(moment) in per_day:
            per_day[day(moment)] += 1
    waits = [(utc(acked) - utc(made)).total_seconds() / 60 for made, acked in session.execute(
        select(Report.created_at, Report.acknowledged_at).where(recent, Report.acknowledged_at.is_not(None)))]
    open_query = select(func.count(), func.min(Report.created_at)).where(
        Report.status.in_(OPEN_REPORTS), Report.acknowledged_at.is_(None), Report.closed_at.is_(None))
    open_count, oldest = session.execute(open_query).one()
    alert_states = dict(session.execute(select(Message.state, func.count()).where(
        Message.purpose == "alert", Message.created_at >= since).group_by(Message.state)).all())
    return Overview(
        days=days, total=len(created),
        by_region=[(code or "?", n) for code, n in count(Report.region_code)],
        by_category=[(cat or "?", n) for cat, n in count(Report.category)],
        by_day=list(per_day.items()),
        ack_median_minutes=percentile(waits, 50), ack_p90_minutes=percentile(waits, 90), acknowledged=len(waits),
        open_unacknowledged=open_count, oldest_open=utc(oldest),
        alerts_finished=sum(alert_states.get(s, 0) for s in FINISHED),
        alerts_failed=sum(alert_states.get(s, 0) for s in FAILED))
