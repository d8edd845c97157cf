"""`flask --app gateway staff add|list|remove|demo`: console accounts. Passwords are prompted
(hidden, asked twice) or read from STAFF_PASSWORD for scripts, never taken as an argument,
so they stay out of shell history and process lists; they are never printed or logged, but
for the demo accounts of a local run (`staff demo`), whose passwords `make run` shows."""
from __future__ import annotations

import os

import click
from flask.cli import with_appcontext

from gateway.cli.runtime import cli_runtime
from gateway.console import accounts
from gateway.errors import ConfigError


@click.group("staff")
def staff() -> None:
    """Console accounts: agency staff, coordinators, operators."""


@staff.command("add")
@click.option("--login", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(accounts.ROLES))
@click.option("--agency", default=None, help="Agency id from config/agencies.yaml (agency_staff only)")
@click.option("--lang", default=accounts.LANGUAGES[0], type=click.Choice(accounts.LANGUAGES),
              help="The console's language for this person; they can switch it in the console.")
@with_appcontext
def staff_add(login: str, name: str, role: str, agency: str, lang: str) -> None:
    """Create a console account; the password is prompted (or read from STAFF_PASSWORD)."""
    password = os.environ.get("STAFF_PASSWORD") or click.prompt("Password", hide_input=True,
                                                                  confirmation_prompt=True)
    runtime = cli_runtime(need_content=True)
    try:
        account = accounts.add(runtime, login, name, role, password, agency, lang)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"staff {account.id} ({account.login}, {account.role}) added")


@staff.command("list")
@with_appcontext
def staff_list() -> None:
    for account, locks in accounts.listing(cli_runtime()):
        lock = f"  (locked for {locks} address{'es' if locks > 1 else ''})" if locks else ""
        click.echo(f"{account.id}\t{account.login}\t{account.role}\t{account.agency_id or '-'}\t{account.name}{lock}")


@staff.command("remove")
@click.argument("login")
@with_appcontext
def staff_remove(login: str) -> None:
    """End an account's access at once (kept, inactive, for the audit trail)."""
    if not accounts.remove(cli_runtime(), login):
        raise click.ClickException(f"no active staff account {login!r}")
    click.echo(f"staff {login} removed")


@staff.command("demo")
@with_appcontext
def staff_demo() -> None:
    """Demo accounts for a local run, each with a new password, printed (refused in production)."""
    try:
        made = accounts.load_demo(cli_runtime(need_content=True))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for account, password in made:
        where = f", {account.agency_id}" if account.agency_id else ""
        click.echo(f"{account.login:<18} password {password}   ({account.role}{where})")
