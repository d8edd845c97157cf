"""Liveness and readiness, as a load balancer or an operator sees them."""
from __future__ import annotations

import pytest
from conftest import free_port


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_when_everything_is_up(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.parametrize("broken, down", [
    ("redis_url", "redis"),
    ("database_url", "database"),
])
def test_readyz_names_what_is_down(settings_overrides, broken, down):
    from gateway import create_app

    nowhere = {"redis_url": f"redis://127.0.0.1:{free_port()}/0",
               "database_url": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gateway"}
    app = create_app({**settings_overrides, broken: nowhere[broken]})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready" and body["checks"][down] == "down"
    assert [name for name, state in body["checks"].items() if state == "ok"] == [
        name for name in ("database", "redis") if name != down]
