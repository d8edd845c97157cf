"""The record: reports are filed once per session, atomically with their outbox row and audit
event, with the reporter's number encrypted; the migrations build exactly the models' schema.
Each test that touches the database runs on SQLite and again on PostgreSQL."""
from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from phone import Phone, flask_transport
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from gateway.cases import reports
from gateway.cases.reports import REF_ALPHABET, REF_LENGTH, NewReport, ReportDesk
from gateway.crypto import Vault, new_key
from gateway.errors import DataKeyError, ReportNotSaved
from gateway.store import db
from gateway.store.migrate import alembic_config
from gateway.store.models import AuditEvent, Base, Outbox, Report

REPORTER = "+6281298765432"
NUMBER_FORMS = ("+6281298765432", "6281298765432", "081298765432", "0812-9876-5432", "81298765432")
# report, job fraud, woman, OKI (item 10, on the second page), nobody in danger, contact allowed, send
KEYS = ["1", "1", "1", "98", "10", "2", "1", "1"]
CODE = re.compile(r"Kode: ([A-Z0-9]{6})\.")


@pytest.fixture
def store_app(settings_overrides, database_url):
    """The app on `database_url`: SQLite, then PostgreSQL."""
    from gateway import create_app

    app = create_app({**settings_overrides, "database_url": database_url})
    yield app
    app.extensions["gateway"].runtime.db.dispose()
    app.extensions["gateway"].runtime.redis.close()


@pytest.fixture
def store_runtime(store_app):
    return store_app.extensions["gateway"].runtime


def _answers(runtime) -> dict:
    region = runtime.content.directory.regions[1].code
    return {"category": "job_fraud", "victim": "woman", "region": region, "urgent": False, "contact": True}


def _counts(runtime) -> tuple[int, int, int]:
    with runtime.db.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(model)) for model in (Report, Outbox, AuditEvent))


def _resend(phone: Phone) -> str:
    """The aggregator posting the same hop again (same sessionId, same text)."""
    status, body = phone.post(phone.form())
    assert status == 200, (status, body)
    return body


def _stored_text(url: str) -> str:
    """Everything the database holds, as the attacker who copies it would see it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":  # the file and its write-ahead log, byte for byte
        path = Path(parsed.database)
        files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
        return b"".join(p.read_bytes() for p in files).decode("latin-1")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            columns = conn.execute(text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND data_type IN ('text', 'character varying', 'character')")).all()
            assert columns, "no text columns found: wrong schema?"
            values = [v for table, column in columns
                      for v in conn.scalars(text(f'SELECT "{column}" FROM "{table}"'))]
    finally:
        engine.dispose()
    return "\n".join(str(v) for v in values if v is not None)


# ---- one report per session ---------------------------------------------------------------

def test_resent_final_hop_files_one_report(store_app, store_runtime):
    """Africa's Talking re-sends the final hop when our answer is slow: same code, nothing doubled."""
    phone = Phone(flask_transport(store_app.test_client()), number=REPORTER)
    first = phone.run(KEYS)[-1]
    again = [_resend(phone) for _ in range(2)]
    ref = CODE.search(first).group(1)
    assert first.startswith("END ") and again == [first, first]
    assert _counts(store_runtime) == (1, 1, 1)
    with store_runtime.db.session() as session:
        report = session.scalar(select(Report))
        row = session.scalar(select(Outbox))
    assert report.ref == ref and (row.job, row.target_id) == ("route_report", report.id)
    assert row.enqueued_at is not None and row.attempts == 1  # enqueued once, after the commit
    assert store_runtime.queue.job_ids == [f"route_report-{report.id}"]


def test_racing_retries_of_the_final_hop_get_the_same_code(store_runtime, monkeypatch):
    """Two requests for one session are both about to insert before either commits: the unique
    session key lets one insert win, and the other answers with the winner's code."""
    desk = ReportDesk(store_runtime)
    real_ref, drawn, seen = reports.new_ref, threading.Barrier(2, timeout=10), threading.local()

    def ref_drawn_by_both():  # inside each request's transaction, just before its insert
        if not getattr(seen, "once", False):
            seen.once = True
            drawn.wait()
        return real_ref()

    monkeypatch.setattr(reports, "new_ref", ref_drawn_by_both)
    new = NewReport("at-ussd", "ATUid_race", REPORTER, _answers(store_runtime))
    results, errors = [], []

    def submit():
        try:
            results.append(desk.submit(new))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert len(results) == 2 and results[0] == results[1]
    assert _counts(store_runtime) == (1, 1, 1)


def test_a_taken_reference_code_is_not_reused(store_runtime, monkeypatch):
    draws = iter(["AAAAAA", "AAAAAA", "BBBBBB"])
    monkeypatch.setattr(reports, "new_ref", lambda: next(draws))
    desk = ReportDesk(store_runtime)
    assert desk.submit(NewReport("at-ussd", "ATUid_one", REPORTER, _answers(store_runtime))) == "AAAAAA"
    assert desk.submit(NewReport("at-ussd", "ATUid_two", REPORTER, _answers(store_runtime))) == "BBBBBB"
    assert _counts(store_runtime) == (2, 2, 2)


def test_no_free_reference_code_files_nothing(store_runtime, monkeypatch):
    desk = ReportDesk(store_runtime)
    taken = desk.submit(NewReport("at-ussd", "ATUid_one", REPORTER, _answers(store_runtime)))
    monkeypatch.setattr(reports, "new_ref", lambda: taken)
    with pytest.raises(ReportNotSaved):
        desk.submit(NewReport("at-ussd", "ATUid_two", REPORTER, _answers(store_runtime)))
    assert _counts(store_runtime) == (1, 1, 1)


# ---- reference codes ----------------------------------------------------------------------

def test_reference_codes_are_unambiguous_and_spread():
    assert not set("0O1I") & set(REF_ALPHABET) and len(set(REF_ALPHABET)) == len(REF_ALPHABET) == 32
    codes = [reports.new_ref() for _ in range(5000)]
    assert all(len(c) == REF_LENGTH and set(c) <= set(REF_ALPHABET) for c in codes)
    # 32**6 ≈ 1.07e9 codes: 5000 draws collide about once in 90 runs, twice about once in 15 000.
    # A rare single collision is what the unique constraint and the retry above are for.
    assert len(set(codes)) >= len(codes) - 1
    counts = Counter("".join(codes))  # 30 000 characters, ~937 each; sd ~30
    assert set(counts) == set(REF_ALPHABET) and min(counts.values()) > 700 and max(counts.values()) < 1200


# ---- the reporter's number at rest --------------------------------------------------------

def test_reporter_number_is_encrypted_at_rest(store_app, store_runtime, database_url):
    phone = Phone(flask_transport(store_app.test_client()), number=REPORTER)
    ref = CODE.search(phone.run(KEYS)[-1]).group(1)
    stored = _stored_text(database_url)
    assert ref in stored  # we are reading where the rows live
    for form in NUMBER_FORMS:
        assert form not in stored, f"{form!r} is stored in clear"
    vault = store_runtime.vault
    with store_runtime.db.session() as session:
        found = session.scalars(select(Report).where(Report.reporter_index == vault.blind_index(REPORTER))).all()
        other = session.scalars(select(Report).where(Report.reporter_index == vault.blind_index("+6281211112222")))
        assert [r.ref for r in found] == [ref] and other.all() == []
    assert vault.decrypt(found[0].reporter_phone_enc) == REPORTER


def test_old_rows_still_decrypt_and_are_found_during_key_rotation(store_runtime):
    """DATA_KEY="new,old": the new key encrypts, both decrypt, and lookups still find old rows."""
    desk = ReportDesk(store_runtime)
    ref = desk.submit(NewReport("at-ussd", "ATUid_old_key", REPORTER, _answers(store_runtime)))
    old_key = store_runtime.settings.data_key
    rotating, new_only = Vault(f"{new_key()},{old_key}"), Vault(new_key())
    with store_runtime.db.session() as session:
        row = session.scalar(select(Report).where(Report.reporter_index.in_(rotating.blind_indexes(REPORTER))))
    assert row is not None and row.ref == ref
    assert rotating.decrypt(row.reporter_phone_enc) == REPORTER
    with pytest.raises(DataKeyError):
        new_only.decrypt(row.reporter_phone_enc)
    rotated = rotating.rotate(row.reporter_phone_enc)
    assert rotated != row.reporter_phone_enc and rotating.decrypt(rotated) == REPORTER
    with pytest.raises(DataKeyError):
        Vault(old_key).decrypt(rotated)  # re-encrypted under the new key only


def test_blind_index_is_keyed_and_stable():
    vault, other = Vault(new_key()), Vault(new_key())
    assert vault.blind_index(REPORTER) == vault.blind_index(REPORTER) != other.blind_index(REPORTER)
    assert vault.blind_index(None) is None and vault.encrypt(None) is None and vault.decrypt(None) is None
    assert vault.blind_indexes(REPORTER)[0] == vault.blind_index(REPORTER)


# ---- schema -------------------------------------------------------------------------------

def test_migrations_match_the_models(database_url):
    """An upgraded database has exactly the tables, columns, types, indexes and constraints the
    models declare: a model change without its migration fails here."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
            assert context.get_current_revision() == head
    finally:
        engine.dispose()


def test_migrations_downgrade_and_upgrade_again(database_url):
    cfg = alembic_config(database_url)
    engine = create_engine(database_url)
    try:
        command.downgrade(cfg, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        command.upgrade(cfg, "head")
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


DUTY_NUMBERS = ("+6281277776666", "+6281277775555")


def _insert_clear_responders(engine) -> None:
    with engine.begin() as conn:
        for n, phone in enumerate(DUTY_NUMBERS, 1):
            conn.execute(text("INSERT INTO responders (agency_id, name, phone, active, demo, created_at) "
                              "VALUES (:agency, :name, :phone, :yes, :no, CURRENT_TIMESTAMP)"),
                         {"agency": "polres_oki", "name": f"Piket {n}", "phone": phone, "yes": True, "no": False})


def test_the_migration_encrypts_duty_numbers_already_stored(database_url):
    """Rows written in clear before duty numbers were encrypted are converted by the upgrade,
    found by their blind index after it, and written back in clear by the downgrade."""
    key, engine = new_key(), create_engine(database_url)
    try:
        command.downgrade(alembic_config(database_url), "0006")
        _insert_clear_responders(engine)
        with pytest.raises(RuntimeError, match="db-upgrade"):  # never encrypted under a guessed key
            command.upgrade(alembic_config(database_url), "head")
        command.upgrade(alembic_config(database_url, data_key=key), "head")
        vault = Vault(key)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT phone_enc, phone_index FROM responders ORDER BY id")).all()
            assert "phone" not in {c["name"] for c in inspect(conn).get_columns("responders")}
            dump = " ".join(str(row) for row in conn.execute(text("SELECT * FROM responders")))
        assert [vault.decrypt(enc) for enc, _ in rows] == list(DUTY_NUMBERS)
        assert [index for _, index in rows] == [vault.blind_index(p) for p in DUTY_NUMBERS]
        assert not any(p[1:] in dump or p[3:] in dump for p in DUTY_NUMBERS)
        command.downgrade(alembic_config(database_url, data_key=key), "0006")
        with engine.connect() as conn:
            assert [r[0] for r in conn.execute(text("SELECT phone FROM responders ORDER BY id"))] == list(DUTY_NUMBERS)
    finally:
        engine.dispose()


def test_a_new_sqlite_file_is_readable_by_its_owner_only(tmp_path, settings_overrides):
    from gateway import create_app
    from gateway.store.migrate import upgrade

    fresh = tmp_path / "fresh" / "gateway.db"
    upgrade(f"sqlite:///{fresh}")
    assert fresh.stat().st_mode & 0o777 == 0o600
    loose = tmp_path / "loose.db"
    loose.touch(mode=0o644)
    loose.chmod(0o644)
    app = create_app({**settings_overrides, "database_url": f"sqlite:///{loose}", "data_key": None})
    try:
        assert loose.stat().st_mode & 0o777 == 0o600  # an existing file is taken back to the owner alone
        assert (settings_overrides["var_dir"] / "data.key").stat().st_mode & 0o777 == 0o600
    finally:
        app.extensions["gateway"].runtime.db.dispose()
        app.extensions["gateway"].runtime.redis.close()


# ---- a report the database refuses --------------------------------------------------------
# tests/golden/report_database_down.*.yaml covers a missing table on SQLite; these cover a
# transaction that fails at its very end (after the report and outbox rows were written) and a
# database that cannot be reached at all.

def _refuse_commits(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":  # the last insert of the transaction, at commit's flush
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON audit_events "
                              "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"))
        else:  # checked at COMMIT itself
            conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'simulated failure'; END $$"))
            conn.execute(text("CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON reports "
                              "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()"))
    engine.dispose()


def _accept_commits(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse" + ("" if engine.dialect.name == "sqlite" else " ON reports")))
    engine.dispose()


def test_commit_failure_shows_no_code_and_leaves_nothing(store_app, store_runtime, database_url):
    _refuse_commits(database_url)
    phone = Phone(flask_transport(store_app.test_client()), number=REPORTER)
    last = phone.run(KEYS)[-1]
    assert last == "END " + store_runtime.content.catalog.text("id", "report.failed")
    assert "129" in last and "110" in last and "Kode" not in last
    assert _counts(store_runtime) == (0, 0, 0)  # the report and its outbox row were rolled back together
    assert store_runtime.queue.count == 0
    _accept_commits(database_url)  # the aggregator re-sends the final hop once the database is back
    again = _resend(phone)
    assert CODE.search(again) and _counts(store_runtime) == (1, 1, 1)


def _drop_pooled_connection(runtime, database_url) -> None:
    """PostgreSQL ends the pool's one connection, as a restart would, while it sits in the pool."""
    with runtime.db.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


@pytest.mark.postgres
def test_a_connection_the_server_dropped_costs_no_report(store_runtime, database_url):
    """Connections used a moment ago are not tested before use: filing finds one dead and files
    on a new one."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a file has no connection to drop")
    desk = ReportDesk(store_runtime)
    desk.submit(NewReport("at-ussd", "ATUid_before", REPORTER, _answers(store_runtime)))
    _drop_pooled_connection(store_runtime, database_url)
    assert desk.submit(NewReport("at-ussd", "ATUid_after", REPORTER, _answers(store_runtime)))
    assert _counts(store_runtime) == (2, 2, 2)


@pytest.mark.postgres
def test_a_connection_idle_long_enough_is_tested_before_use(store_runtime, database_url, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("a file has no connection to drop")
    _drop_pooled_connection(store_runtime, database_url)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    assert _counts(store_runtime) == (0, 0, 0)  # the dead connection was replaced, not used


def _unreachable_urls(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {"sqlite": f"sqlite:///{tmp_path}",  # a directory: "unable to open database file"
            "postgresql": f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_unreachable_database_shows_no_code(settings_overrides, tmp_path, backend):
    from gateway import create_app

    app = create_app({**settings_overrides, "database_url": _unreachable_urls(tmp_path)[backend]})
    runtime = app.extensions["gateway"].runtime
    try:
        client = app.test_client()
        screens = Phone(flask_transport(client), number=REPORTER).run(KEYS)
        assert all(s.startswith("CON ") for s in screens[:-1])
        assert screens[-1] == "END " + runtime.content.catalog.text("id", "report.failed")
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"] == {"database": "down", "redis": "ok"}
        assert runtime.queue.count == 0
    finally:
        runtime.db.dispose()
        runtime.redis.close()
