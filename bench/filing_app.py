"""The durable-filing baseline: a minimal Flask app that, on a session's final hop, inserts one
row and enqueues one RQ job in one transaction (the job handed to Redis before the commit, so a
refused commit leaves a job for nothing, which the gateway's outbox avoids), and answers every
other hop with a fixed `CON` screen. Served by the same server on the same database (SQLite as
the gateway sets it up, or PostgreSQL) and Redis, it is the ceiling for the hop that files."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from flask import Flask, Response, request
from redis import Redis
from rq import Queue
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, insert, make_url
from sqlalchemy.exc import SQLAlchemyError

from bench.loads import REPORT_KEYS

SCREEN = "CON Hotline TPPO\n1 Lapor\n2 Nomor bantuan\n3 Tanda TPPO\n00 Keluar"
FILINGS = Table("bench_filings", MetaData(), Column("id", Integer, primary_key=True),
                Column("ref", String(6), nullable=False), Column("session_id", String(100), nullable=False),
                Column("phone", String(32), nullable=False), Column("answers", String(200), nullable=False))


def create_app() -> Flask:
    url = os.environ["DATABASE_URL"]
    engine = create_engine(url)
    if url.startswith("sqlite"):
        Path(make_url(url).database).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _setup(dbapi, _record):  # as the gateway sets SQLite up
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()
    try:
        FILINGS.metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError:  # the server's other worker made it at the same moment
        pass
    queue = Queue(connection=Redis.from_url(os.environ["REDIS_URL"]))
    app = Flask(__name__)

    @app.post("/at/ussd")
    def ussd() -> Response:
        text = request.form.get("text") or ""
        if len(text.split("*")) < len(REPORT_KEYS):
            return Response(SCREEN, mimetype="text/plain")
        ref = "".join(secrets.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(6))
        with engine.begin() as conn:
            row = conn.execute(insert(FILINGS).values(
                ref=ref, session_id=request.form["sessionId"], phone=request.form["phoneNumber"],
                answers=json.dumps(text.split("*")))).inserted_primary_key[0]
            queue.enqueue("bench.jobs.noop", job_id=f"filing-{row}")
        return Response(f"END Terima kasih. Kode: {ref}", mimetype="text/plain")

    return app
