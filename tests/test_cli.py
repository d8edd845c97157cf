"""Operator commands and the start-up guards: what an operator types, and what refuses to run."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import click
import pytest
from production import production_settings

from gateway import cli, create_app
from gateway.cases import roster
from gateway.errors import ConfigError
from gateway.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def command_names() -> list[str]:
    names = []
    for command in cli.COMMANDS:
        if isinstance(command, click.Group):
            names += [f"{command.name} {sub}" for sub in command.commands]
        else:
            names.append(command.name)
    return names


@pytest.mark.parametrize("name", command_names())
def test_every_command_is_documented_in_the_readme(name):
    assert re.search(rf"`{re.escape(name)}\b", README.read_text()), f"README does not document `{name}`"


def test_readme_opens_with_the_two_setup_commands():
    head = README.read_text()[:1500]
    assert head.index("make run") < head.index("make test")


def test_responders_add_list_remove(runner):
    added = runner.invoke(args=["responders", "add", "--agency", "polres_oki", "--name", "Piket PPA",
                                "--phone", "0812 3456 7890"])
    assert added.exit_code == 0, added.output
    responder_id = int(re.search(r"responder (\d+) added to polres_oki", added.output).group(1))

    listed = runner.invoke(args=["responders", "list", "--agency", "polres_oki"])
    assert f"{responder_id}\tpolres_oki\t+6281234567890\tPiket PPA" in listed.output

    removed = runner.invoke(args=["responders", "remove", str(responder_id)])
    assert removed.exit_code == 0 and "removed" in removed.output
    assert str(responder_id) not in runner.invoke(args=["responders", "list"]).output
    assert runner.invoke(args=["responders", "remove", "9999"]).exit_code != 0


def test_adding_the_same_number_twice_keeps_one_responder(runner, runtime):
    for _ in range(2):
        runner.invoke(args=["responders", "add", "--agency", "polres_oki", "--name", "Piket",
                            "--phone", "+6281234567890"])
    assert len(roster.listing(runtime, "polres_oki")) == 1


@pytest.mark.parametrize("args, message", [
    (["--agency", "polres_mars", "--name", "X", "--phone", "+6281234567890"], "unknown agency 'polres_mars'"),
    (["--agency", "polres_oki", "--name", "X", "--phone", "12345"], "'12345' is not a valid phone number"),
    (["--agency", "polres_oki", "--name", "X", "--phone", "+62 812 ABCD"], "is not a valid phone number"),
])
def test_responders_add_refuses_bad_input(runner, args, message):
    result = runner.invoke(args=["responders", "add", *args])
    assert result.exit_code != 0 and message in result.output


def test_demo_roster_gives_every_agency_a_desk(runner, runtime):
    result = runner.invoke(args=["responders", "demo"])
    assert result.exit_code == 0, result.output
    desks = roster.listing(runtime)
    assert {r.agency_id for r in desks} == {a.id for a in runtime.content.directory.agencies}
    assert all(r.demo for r in desks)


@pytest.mark.parametrize("overrides", [
    {"at_username": "tppo-live", "at_api_key": "live-key"},
    production_settings(),
], ids=["live account", "production"])
def test_demo_roster_is_refused_where_a_stranger_could_be_alerted(settings_overrides, overrides):
    with click.Context(click.Command("flask")):  # as the flask CLI builds it: no start-up guards
        app = create_app({**settings_overrides, **overrides})
    result = app.test_cli_runner().invoke(args=["responders", "demo"])
    assert result.exit_code != 0 and "demo roster is refused" in result.output
    assert roster.listing(app.extensions["gateway"].runtime) == []


@pytest.mark.parametrize("missing", ["webhook_token", "data_key", "secret_key", "metrics_token"])
def test_production_refuses_to_start_without_secrets(settings_overrides, missing):
    config = {**settings_overrides, **production_settings(), missing: None}
    with pytest.raises(ConfigError, match=f"needs {missing.upper()}"):
        create_app(config)


@pytest.mark.parametrize("provider, message", [
    ({"at_api_key": None}, "needs an SMS provider"),
    ({"sms_provider": "sink"}, "needs an SMS provider"),
    ({"at_username": "sandbox"}, "AT_USERNAME=sandbox never delivers"),
], ids=["no AT_API_KEY", "the sink named", "the sandbox"])
def test_production_refuses_to_start_on_an_sms_sink(settings_overrides, provider, message):
    """Alerts on the sink are marked sent and reach nobody, and their words go to a log file."""
    with pytest.raises(ConfigError, match=message):
        create_app({**settings_overrides, **production_settings(), **provider})


ZERO_KEY = base64.urlsafe_b64encode(bytes(32)).decode()


@pytest.mark.parametrize("weak, message", [
    ({"webhook_token": "a"}, "WEBHOOK_TOKEN has 1 characters, at least 32"),
    ({"webhook_token": "t" * 64}, "WEBHOOK_TOKEN is too predictable"),
    ({"secret_key": "s" * 40}, "SECRET_KEY is too predictable"),
    ({"secret_key": "hotline-2026-" * 4}, "SECRET_KEY repeats a shorter pattern"),
    ({"metrics_token": "metrics"}, "METRICS_TOKEN has 7 characters"),
    ({"data_key": ZERO_KEY}, "DATA_KEY key 1 is not random"),
    ({"data_key": "not-a-fernet-key"}, "DATA_KEY key 1 is not a Fernet key"),
], ids=["one-character token", "repeated token", "repeated secret key", "pattern secret key", "short metrics token",
        "all-zero data key", "malformed data key"])
def test_production_refuses_weak_secrets(settings_overrides, weak, message):
    with pytest.raises(ConfigError, match=message):
        create_app({**settings_overrides, **production_settings(), **weak})


def test_production_refuses_one_secret_used_twice(settings_overrides):
    data_key = settings_overrides["data_key"]
    for shared in ({"secret_key": data_key}, {"metrics_token": "x"}, {"data_key": f"{data_key},{data_key}"}):
        settings = production_settings(**shared)
        if "metrics_token" in shared:
            settings["metrics_token"] = settings["webhook_token"]
        with pytest.raises(ConfigError, match="must each be different"):
            create_app({**settings_overrides, **settings})


def test_development_keeps_its_easy_secrets():
    assert Settings(webhook_token="a", secret_key="s" * 40).problems() == []


def test_production_refuses_to_start_without_a_real_roster(settings_overrides):
    config = {**settings_overrides, **production_settings()}
    with pytest.raises(ConfigError, match="needs a real responder roster"):
        create_app(config)

    with click.Context(click.Command("flask")):
        operator = create_app(config)
    runtime = operator.extensions["gateway"].runtime
    roster.add(runtime, "polres_oki", "Demo", roster.demo_number(1), demo=True)
    with pytest.raises(ConfigError, match="1 demo responders are still active"):
        create_app(config)

    roster.remove(runtime, roster.listing(runtime)[0].id)
    roster.add(runtime, "polres_oki", "Piket PPA", "+6281234567890")
    assert create_app(config).extensions["gateway"].runtime.settings.production


def test_unknown_environment_is_refused(settings_overrides):
    with pytest.raises(ConfigError, match="GATEWAY_ENV must be development or production"):
        create_app({**settings_overrides, "env": "staging"})


def test_db_upgrade_is_repeatable(runner):
    for _ in range(2):
        result = runner.invoke(args=["db-upgrade"])
        assert result.exit_code == 0 and "up to date" in result.output
