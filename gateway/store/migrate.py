"""Alembic, driven from code so neither `make run` nor the tests need an alembic.ini."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from alembic import command
from alembic.config import Config

from gateway.store.db import private_sqlite_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str, data_key: Optional[str] = None) -> Config:
    """`data_key`: for a migration that encrypts what was stored in clear (never written to a file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["data_key"] = data_key
    return cfg


def upgrade(url: str, revision: str = "head", data_key: Optional[str] = None) -> None:
    private_sqlite_file(url)
    command.upgrade(alembic_config(url, data_key), revision)
