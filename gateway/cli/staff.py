"""`flask --app gateway staff add|list|remove|demo`: console accounts. Passwords are prompted
(hidden, asked twice) or read from STAFF_PASSWORD for scripts, never taken as an argument,
so they stay out of shell history and process lists; they are never printed or logged, but
for the demo accounts of a local run (`staff demo`), whose passwords `make run` shows."""
from __future__ import annotations

import os

import click
from flask.cli import with_appcontext

from gateway.cli.runtime import cli_runtime, or_fail, removal
from gateway.console import accounts


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
    account = or_fail(lambda: accounts.add(runtime, login, name, role, password, agency, lang))
    click.echo(f"staff {account.id} ({account.login}, {account.role}) added")


@staff.command("list")
@with_appcontext
def staff_list() -> None:
    for account, locks in accounts.listing(cli_runtime()):
        lock = f"  (locked for {locks} address{'es' if locks > 1 else ''})" if locks else ""
        click.echo(f"{account.id}\t{account.login}\t{account.role}\t{account.agency_id or '-'}\t{account.name}{lock}")


removal(staff, click.argument("login"), accounts.remove, "staff account",
        help="End an account's access at once (kept, inactive, for the audit trail).")


@staff.command("demo")
@with_appcontext
def staff_demo() -> None:
    """Demo accounts for a local run, each with a new password, printed (refused in production)."""
    made = or_fail(lambda: accounts.load_demo(cli_runtime(need_content=True)))
    for account, password in made:
        where = f", {account.agency_id}" if account.agency_id else ""
        click.echo(f"{account.login:<18} password {password}   ({account.role}{where})")
