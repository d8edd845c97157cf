"""What every operator command module shares (gateway/cli/__init__.py, community.py, staff.py):
the app's Runtime, a refusal said as a one-line error, and the `remove` command each register has."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.runtime import Runtime

T = TypeVar("T")


def cli_runtime(need_content: bool = False) -> Runtime:
    """The Runtime; with `need_content`, a clear error instead of a traceback when config/ is broken
    (commands still load then, so that `validate-config` can say what is wrong)."""
    runtime = current_app.extensions["gateway"].runtime
    if need_content and runtime.content is None:
        raise click.ClickException("config/ cannot be read; run `flask --app gateway validate-config`")
    return runtime


def exit_1_if(found) -> None:
    """A check's exit status: 1 when it found something, for a script or a monitor to act on."""
    if found:
        raise SystemExit(1)


def or_fail(action: Callable[[], T]) -> T:
    """What the configuration refuses (an unknown agency, a bad number) as the command's error."""
    try:
        return action()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def removal(group: click.Group, argument: Callable, remove: Callable[[Runtime, Any], bool], noun: str,
            help: str | None = None) -> None:
    """Add `<group> remove <key>` to a register: `remove` answers False when there is no such entry."""

    @group.command("remove", help=help)
    @argument
    @with_appcontext
    def command(**given) -> None:
        (key,) = given.values()
        if not remove(cli_runtime(), key):
            raise click.ClickException(f"no {noun} {key}")
        click.echo(f"{noun} {key} removed")
