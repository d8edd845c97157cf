"""Operator commands: `flask --app gateway <command>`. Each is documented in the README
(a test checks that)."""
from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from flask.cli import with_appcontext

from gateway import keys
from gateway.cases import retention, roster
from gateway.cli import community as community_cli
from gateway.cli import diagram, simulator
from gateway.cli.runtime import cli_runtime as _runtime
from gateway.cli.runtime import exit_1_if, or_fail, removal
from gateway.cli.staff import staff
from gateway.messaging import outbox
from gateway.runtime import data_key
from gateway.store.migrate import upgrade


@click.command("validate-config")
@click.option("--show", is_flag=True, help="Print every screen with its length and encoding.")
@with_appcontext
def validate_config(show: bool) -> None:
    """Check flows, messages, regions and agencies; exit 1 on any error."""
    runtime = _runtime()
    if runtime.content is None:
        for problem in runtime.config_problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(1)
    content = runtime.content
    problems, rendered = content.validate()
    if show:
        for r in rendered:
            flag = "  OVER" if r.length > content.flow.limit else ""
            flag += "  NOT GSM-7" if r.encoding != "GSM-7" else ""
            click.echo(f"--- {r.screen} [{r.lang}] page {r.page + 1}: "
                       f"{r.length}/{content.flow.limit} {r.encoding}{flag}")
            click.echo(r.text)
    for warning in content.directory.warnings:
        click.echo(f"warning: {warning}")
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    click.echo(f"{len(rendered)} screens checked, {len(content.directory.warnings)} warnings, {len(problems)} errors")
    exit_1_if(problems)


@click.command("db-upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    settings = _runtime().settings
    upgrade(settings.database_url, data_key=data_key(settings))  # a migration may encrypt what was in clear
    click.echo("database schema is up to date")


@click.group("responders")
def responders() -> None:
    """Duty numbers that receive alerts."""


@responders.command("add")
@click.option("--agency", required=True, help="Agency id from config/agencies.yaml")
@click.option("--name", required=True)
@click.option("--phone", required=True, help="Mobile number, e.g. +62812...")
@click.option("--alerts", "alert_channel", type=click.Choice(roster.ALERT_CHANNELS), default="sms", show_default=True,
              help="sms, or wa: WhatsApp, with SMS when WhatsApp fails or no template fits.")
@with_appcontext
def responders_add(agency: str, name: str, phone: str, alert_channel: str) -> None:
    r = or_fail(lambda: roster.add(_runtime(True), agency, name, phone, alert_channel=alert_channel))
    click.echo(f"responder {r.id} added to {agency}")


@responders.command("list")
@click.option("--agency", default=None)
@with_appcontext
def responders_list(agency: str) -> None:
    for r in roster.listing(_runtime(), agency):
        whatsapp = "  (alerts by WhatsApp)" if r.alert_channel == "wa" else ""
        click.echo(f"{r.id}\t{r.agency_id}\t{r.phone}\t{r.name}{'  (demo)' if r.demo else ''}{whatsapp}")


removal(responders, click.argument("responder_id", type=int), roster.remove, "responder")


@responders.command("demo")
@with_appcontext
def responders_demo() -> None:
    """Give every agency a fictitious demo desk (local sink or sandbox only)."""
    count = or_fail(lambda: roster.load_demo(_runtime(True)))
    click.echo(f"demo roster loaded for {count} agencies")


@click.command("reconcile")
@with_appcontext
def reconcile() -> None:
    """Hand to RQ every outbox job that Redis lost, and those held for the next minute."""
    click.echo(f"{outbox.reconcile(_runtime())} jobs handed to RQ")


@click.command("backlog")
@click.option("--minutes", default=1, show_default=True, help="Only work older than this.")
@with_appcontext
def backlog(minutes: int) -> None:
    """List work still owed: reports not routed, SMS not sent, checks not run (exit 1 if any)."""
    rows = outbox.backlog(_runtime(), timedelta(minutes=minutes))
    for job, target_id, attempts, created_at, status in rows:
        click.echo(f"{job}\t{target_id}\tattempts={attempts}\tsince={created_at:%Y-%m-%d %H:%M}\t{status}")
    click.echo(f"{len(rows)} outbox entries open for more than {minutes} minutes")
    exit_1_if(rows)


@click.command("rotate-key")
@with_appcontext
def rotate_key() -> None:
    """Re-encrypt personal data with the first DATA_KEY key and rebuild the blind indexes."""
    counts = keys.rotate(_runtime())
    click.echo("re-encrypted: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    click.echo("the old key can now be removed from DATA_KEY")


@click.command("purge")
@with_appcontext
def purge() -> None:
    """Remove numbers and text past their retention period now (workers also do it daily)."""
    click.echo(f"purged: {retention.purge(_runtime())}")


COMMANDS = (validate_config, db_upgrade, responders, reconcile, backlog, rotate_key, purge,
            diagram.flow_diagram, simulator.simulate, staff)


COMMANDS += community_cli.COMMANDS


def init_app(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
