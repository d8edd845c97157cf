"""Operator commands for volunteers and awareness broadcasts (see gateway.cases.community)."""
from __future__ import annotations

from datetime import datetime, timezone

import click
from flask.cli import with_appcontext

from gateway.cases import community
from gateway.cli.runtime import cli_runtime, or_fail, removal


@click.group("volunteers")
def volunteers() -> None:
    """Village volunteers (tim relawan): their reports are marked trusted."""


@volunteers.command("add")
@click.option("--name", required=True)
@click.option("--region", required=True, help="Kabupaten/kota: code (16.02) or name (OKI)")
@click.option("--phone", required=True)
@with_appcontext
def volunteers_add(name: str, region: str, phone: str) -> None:
    volunteer = or_fail(lambda: community.add_volunteer(cli_runtime(True), name, region, phone))
    click.echo(f"volunteer {volunteer.id} added for {volunteer.region_code}")


@volunteers.command("list")
@with_appcontext
def volunteers_list() -> None:
    for v in community.volunteers(cli_runtime()):
        click.echo(f"{v.id}\t{v.region_code}\t{v.name}")


removal(volunteers, click.argument("volunteer_id", type=int), community.remove_volunteer, "volunteer")


@click.group("broadcast")
def broadcast() -> None:
    """Awareness messages to residents who opted in with IKUT <area>."""


@broadcast.command("add")
@click.option("--region", required=True, help="Kabupaten/kota: code (16.02) or name (OKI)")
@click.option("--text", "body", required=True, help="One GSM-7 SMS, at most 160 characters")
@click.option("--at", "send_at", type=click.DateTime(["%Y-%m-%d %H:%M"]), default=None,
              help="When to send, UTC (default: now)")
@with_appcontext
def broadcast_add(region: str, body: str, send_at) -> None:
    when = send_at.replace(tzinfo=timezone.utc) if send_at else datetime.now(timezone.utc)
    item = or_fail(lambda: community.schedule_broadcast(cli_runtime(True), region, body, when))
    click.echo(f"broadcast {item.id} for {item.region_code} scheduled at {when:%Y-%m-%d %H:%M} UTC")


COMMANDS = (volunteers, broadcast)
