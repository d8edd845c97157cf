"""Which cases a staff member may see, and the list with its filters.

Agency staff see a report only when their agency holds an assignment for it or one of its
duty numbers was alerted about it; anything else is answered as if it did not exist (404), so
editing the URL reveals nothing. Coordinators see every case; operators none."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from gateway.console.accounts import Account
from gateway.store.models import Assignment, Message, Report, Responder
from gateway.store.states import OPEN_REPORTS, ReportStatus

STATUSES = tuple(ReportStatus)
AGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
AGE_CHOICES = ("24h", "7d", "30d", "90d", "over7d")
OLDER = {"over7d": timedelta(days=7)}  # open longer than this
PAGE_SIZE = 50
MAX_PAGE = 10_000  # an offset beyond any real list, and below what the database can take


def visible(account: Account, query: Select) -> Select:
    """Restrict a query over Report to what `account` may see."""
    if account.role == "coordinator":
        return query
    if account.role != "agency_staff" or not account.agency_id:
        return query.where(false())
    assigned = select(Assignment.report_id).where(Assignment.agency_id == account.agency_id)
    alerted = (select(Message.report_id).join(Responder, Responder.id == Message.responder_id)
               .where(Message.purpose == "alert", Responder.agency_id == account.agency_id))
    return query.where(or_(Report.id.in_(assigned), Report.id.in_(alerted)))


def get(session: Session, account: Account, ref: str) -> Optional[Report]:
    return session.scalar(visible(account, select(Report).where(Report.ref == ref)))


@dataclass(frozen=True)
class Filters:
    status: str = ""
    region: str = ""
    category: str = ""
    urgent: str = ""   # "yes", "no" or "" (either)
    age: str = ""      # a key of AGES or OLDER, or ""
    page: int = 1

    @classmethod
    def from_args(cls, args, regions: set[str], categories: set[str]) -> "Filters":
        """Unknown values are dropped rather than refused: a stale bookmark still opens."""
        pick = lambda name, allowed: args.get(name, "") if args.get(name, "") in allowed else ""  # noqa: E731
        try:
            page = min(max(1, int(args.get("page", 1))), MAX_PAGE)
        except ValueError:
            page = 1
        return cls(pick("status", {*STATUSES, "open"}), pick("region", regions), pick("category", categories),
                   pick("urgent", {"yes", "no"}), pick("age", {*AGES, *OLDER}), page)

    def apply(self, query: Select, now: datetime) -> Select:
        if self.status == "open":
            query = query.where(Report.status.in_(OPEN_REPORTS))
        elif self.status:
            query = query.where(Report.status == self.status)
        if self.region:
            query = query.where(Report.region_code == self.region)
        if self.category:
            query = query.where(Report.category == self.category)
        if self.urgent:
            query = query.where(Report.urgent.is_(self.urgent == "yes"))
        if self.age in AGES:
            query = query.where(Report.created_at >= now - AGES[self.age])
        elif self.age in OLDER:
            query = query.where(Report.created_at < now - OLDER[self.age], Report.status.in_(OPEN_REPORTS))
        return query

    def args(self, **changes) -> dict:
        """Query-string arguments for a link (empty ones left out)."""
        values = {"status": self.status, "region": self.region, "category": self.category, "urgent": self.urgent,
                  "age": self.age, "page": self.page, **changes}
        return {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}


def listing(session: Session, account: Account, filters: Filters,
            now: Optional[datetime] = None) -> tuple[list[Report], bool]:
    """One page of cases, newest first, and whether there is a next page."""
    now = now or datetime.now(timezone.utc)
    query = filters.apply(visible(account, select(Report)), now).order_by(Report.created_at.desc(), Report.id.desc())
    rows = list(session.scalars(query.offset((filters.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
