"""Run the outbox's jobs in this process, in order, without RQ: conversation tests then read
like a log of what the worker would do, and stay fast and deterministic. The real worker
process is exercised by the end-to-end tests."""
from __future__ import annotations

import itertools

from sqlalchemy import select

from gateway.errors import TransientSendError
from gateway.store.models import Outbox
from workers import jobs


def drain(runtime, monkeypatch, skip=("finish_report",), rounds: int = 20) -> list[tuple[str, int, str]]:
    """Run every unfinished outbox job (but `skip`) until none is left; returns what ran."""
    monkeypatch.setattr(jobs, "runtime", lambda: runtime)
    ran = []
    for _ in range(rounds):
        with runtime.db.session() as session:
            pending = session.execute(select(Outbox.job, Outbox.target_id).where(
                Outbox.done_at.is_(None), Outbox.job.not_in(skip)).order_by(Outbox.id)).all()
        progress = False
        for job, target_id in pending:
            try:
                result = getattr(jobs, job)(target_id)
            except TransientSendError as exc:
                result = f"retry: {exc}"
            else:
                progress = True
            ran.append((job, target_id, result))
        if not progress:
            return ran
    return ran


_sms_ids = itertools.count(1)


def sms_texter(client, runtime, fake_at, monkeypatch, number: str):
    """A function that texts the service from `number` through Africa's Talking's SMS webhook,
    runs the jobs that follow, and returns the SMS that came back to that number."""
    def text(body: str) -> list[str]:
        seen = len(fake_at.messages)
        response = client.post("/at/sms", data={"from": number, "to": "12345", "text": body,
                                                "id": f"ATSMS_{next(_sms_ids):06d}", "date": "2026-11-28 10:00:00"})
        assert response.status_code == 200, response.get_data(as_text=True)
        drain(runtime, monkeypatch)
        return [m["message"] for m in fake_at.messages[seen:] if m["to"] == number]
    return text

