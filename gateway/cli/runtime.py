"""The app's Runtime for operator commands, shared by every command module (gateway/cli/__init__.py,
gateway/cli/community.py, gateway/cli/staff.py): one place says what a command needs."""
from __future__ import annotations

import click
from flask import current_app


def cli_runtime(need_content: bool = False):
    """The Runtime; with `need_content`, a clear error instead of a traceback when config/ is broken
    (commands still load then, so that `validate-config` can say what is wrong)."""
    runtime = current_app.extensions["gateway"].runtime
    if need_content and runtime.content is None:
        raise click.ClickException("config/ cannot be read; run `flask --app gateway validate-config`")
    return runtime
