"""Golden conversations: every path of the USSD journey, in both languages, through the real
HTTP adapter. Each file pairs the keys pressed with the screens expected, and records what the
conversation filed (the report's fields and the jobs it queued), so a change that still shows
the right screens but files something else fails too. After a deliberate change to the flow
or texts, `pytest tests/test_golden.py --update-golden` rewrites them."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from phone import Phone, flask_transport
from sqlalchemy import select, text

from gateway.store.models import Contact, Outbox, Report

GOLDEN = Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.yaml"))
REF = "K7Q2MX"


class _Literal(str):
    pass


yaml.SafeDumper.add_representer(_Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))


def test_golden_files_cover_every_screen_in_both_languages(app):
    """No screen of the flow is left without a golden conversation, in id and in en."""
    content = app.extensions["gateway"].runtime.content
    shown = "\n".join(step["screen"] for path in FILES for step in yaml.safe_load(path.read_text())["steps"])
    for name, screen in content.flow.screens.items():
        first = screen.text[0] if isinstance(screen.text[0], str) else screen.text[0].key
        for lang in ("id", "en"):
            marker = content.catalog.text(lang, first).split("{")[0].strip()[:20]
            assert marker in shown, f"no golden conversation shows screen {name!r} in {lang}"


def _filed(runtime) -> dict:
    """What the conversation left in the database: reports with their fields, jobs owed."""
    with runtime.db.session() as session:
        reports = [{"ref": r.ref, "channel": r.channel, "category": r.category, "victim": r.victim,
                    "region": r.region_code, "urgent": r.urgent, "contact_ok": r.contact_ok,
                    "reporter_kept": r.reporter_phone_enc is not None, "lang": r.lang, "status": r.status,
                    "details": runtime.vault.decrypt(r.details_enc) if r.details_enc else None}
                   for r in session.scalars(select(Report).order_by(Report.id))]
        jobs = sorted(session.scalars(select(Outbox.job)))
        subscribed = list(session.scalars(select(Contact.subscribed_region)
                                          .where(Contact.subscribed_region.is_not(None))))
    return {"reports": reports, "jobs": jobs, "subscribed": subscribed}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_conversation(path, app, client, monkeypatch, request):
    monkeypatch.setattr("gateway.cases.reports.new_ref", lambda: REF)
    doc = yaml.safe_load(path.read_text())
    if doc.get("database") == "broken":  # a real failure: the table the effect needs is gone
        table = doc.get("table", "reports")
        with app.extensions["gateway"].runtime.db.session() as session:
            session.execute(text(f"ALTER TABLE {table} RENAME TO {table}_gone"))
    phone = Phone(flask_transport(client), number=doc.get("phone", "+6281234567890"))
    actual = [phone.dial() if i == 0 else phone.press(step["press"]) for i, step in enumerate(doc["steps"])]
    filed = _filed(app.extensions["gateway"].runtime) if doc.get("database") != "broken" else None
    if request.config.getoption("--update-golden"):
        for step, screen in zip(doc["steps"], actual, strict=True):
            step["screen"] = _Literal(screen)
        doc["filed"] = filed
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200))
        return
    assert filed == doc["filed"], f"{path.name}: what the conversation filed"
    for i, (step, screen) in enumerate(zip(doc["steps"], actual, strict=True)):
        assert screen == step["screen"], f"{path.name} step {i} (pressed {step.get('press')!r})"
        assert len(screen) <= 170  # 182 is GSM's limit; some gateways cut earlier
