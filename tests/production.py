"""Settings for an app in production mode: every secret strong and its own, and SMS through a
live-looking Africa's Talking account (the local fake, when a test has one), as production
refuses the sink, the sandbox, and weak or shared secrets."""
from __future__ import annotations

import secrets
from typing import Optional


def production_settings(fake_at=None, **overrides) -> dict:
    """Overrides for `create_app`: add them to the test's database, Redis and DATA_KEY ones."""
    return {"env": "production", "webhook_token": secrets.token_urlsafe(32), "secret_key": secrets.token_urlsafe(48),
            "metrics_token": secrets.token_urlsafe(32), "at_username": "tppo-test",
            "at_api_key": fake_at.api_key if fake_at else "test-api-key",
            "at_api_url": fake_at.base_url if fake_at else _nowhere(), **overrides}


def _nowhere() -> Optional[str]:
    """A provider URL nothing answers: a test without the fake must not send anything real."""
    return "http://127.0.0.1:9/version1"
