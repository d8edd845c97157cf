"""Flow and reference-data validation: every error names its file, entry and field."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from gateway.content import load_content
from gateway.errors import ConfigError

CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture
def config_copy(tmp_path):
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def edit(path: Path, change):
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


def problems_of(config_dir: Path) -> list[str]:
    try:
        return load_content(config_dir).validate()[0]
    except ConfigError as exc:
        return exc.problems


def test_shipped_config_is_valid():
    assert problems_of(CONFIG) == []


FLOW_BREAKS = {
    "unknown goto": (lambda d: d["screens"]["main"]["options"][0].update(goto="nowhere"),
                     "ussd: screens.main.options.0.goto: unknown screen 'nowhere'"),
    "duplicate key": (lambda d: d["screens"]["main"]["options"][1].update(key="1"),
                      "ussd: screens.main.options: key '1' used twice"),
    "reserved key": (lambda d: d["screens"]["victim"]["options"][0].update(key="98"),
                     "ussd: screens.victim.options: key '98' is reserved for navigation"),
    "unknown next": (lambda d: d["screens"]["victim"].update(next="nope"),
                     "ussd: screens.victim.next: unknown screen 'nope'"),
    "missing field": (lambda d: d["screens"]["victim"].pop("field"),
                      "ussd: screens.victim.field: required for a choice screen"),
    "unknown source": (lambda d: d["screens"]["region"].update(source="villages"),
                       "ussd: screens.region.source: unknown source 'villages'"),
    "unreachable": (lambda d: d["screens"].update(orphan={"type": "end", "text": "exit.text"}),
                    "ussd: screens.orphan.type: unreachable"),
    "bad type": (lambda d: d["screens"]["main"].update(type="carousel"), "ussd.yaml: screens.main.type:"),
    "limit": (lambda d: d.update(limit=100), "over the limit of 100"),
    "effect on a screen that goes on": (lambda d: d["screens"]["victim"].update(effect="submit_report",
                                                                                on_error="submit_failed"),
                                        "ussd: screens.victim.effect: only an end screen can have one"),
    "error screen that goes on": (lambda d: d["screens"]["submitted"].update(on_error="victim"),
                                  "ussd: screens.submitted.on_error: the error screen 'victim' must be an end screen"),
}


@pytest.mark.parametrize("change, message", FLOW_BREAKS.values(), ids=FLOW_BREAKS.keys())
def test_flow_errors_name_the_screen_and_field(config_copy, change, message):
    edit(config_copy / "flows" / "ussd.yaml", change)
    assert any(message in p for p in problems_of(config_copy)), problems_of(config_copy)


MESSAGE_BREAKS = {
    "missing translation": (lambda d: d["report"].pop("victim"), "message 'report.victim' missing in en.yaml"),
    "unknown placeholder": (lambda d: d["report"].update(done="Code {reff}"),
                            "en.yaml: report.done: unknown placeholder"),
    "too long": (lambda d: d["report"].update(urgent="Danger? " * 30), "en.yaml: screen 'urgent' page 1 is"),
    "not GSM-7": (lambda d: d["report"].update(urgent="Bahaya sekarang? \u2013 ya"), "outside GSM-7"),
}


@pytest.mark.parametrize("change, message", MESSAGE_BREAKS.values(), ids=MESSAGE_BREAKS.keys())
def test_message_errors_name_the_language_and_key(config_copy, change, message):
    edit(config_copy / "messages" / "en.yaml", change)
    assert any(message in p for p in problems_of(config_copy)), problems_of(config_copy)


def test_alert_longer_than_one_sms_is_rejected(config_copy):
    edit(config_copy / "messages" / "id.yaml", lambda d: d["alert"].update(urgent=" SANGAT DARURAT SEKALI" * 3))
    assert any("alert.body is" in p and "over 160" in p for p in problems_of(config_copy))


DIRECTORY_BREAKS = {
    "dangling escalation": (lambda d: d["agencies"][0].update(escalates_to="polda_x"),
                            "agencies.yaml: agencies polres_oku: escalates_to: unknown agency 'polda_x'"),
    "unknown area": (lambda d: d["agencies"][0].update(areas=["16.99"]),
                     "agencies.yaml: agencies polres_oku: areas: unknown area code '16.99'"),
    "malformed number": (lambda d: d["agencies"][0].update(public_phone="0812-ABC"),
                         "agencies.yaml: agencies polres_oku: public_phone: '0812-ABC' is not"),
    "number not E.164": (lambda d: d["agencies"][0].update(public_phone="082179858798"),
                         "public_phone: '082179858798' must be written in E.164"),
    "cycle": (lambda d: [a.update(escalates_to="polres_oku") for a in d["agencies"] if a["id"] == "polda_ppa_ppo"],
              "escalates_to: cycle polres_oku -> polda_ppa_ppo -> polres_oku"),
    "unknown category": (lambda d: d["agencies"][1].update(categories=["piracy"]),
                         "agencies.yaml: agencies uptd_ppa_oku: categories: unknown category 'piracy'"),
    "unknown kind": (lambda d: d["agencies"][0].update(kind="army"), "agencies.yaml: agencies polres_oku: kind:"),
    "duplicate id": (lambda d: d["agencies"][1].update(id="polres_oku"), "agencies polres_oku: id: used twice"),
}


@pytest.mark.parametrize("change, message", DIRECTORY_BREAKS.values(), ids=DIRECTORY_BREAKS.keys())
def test_directory_errors_name_the_entry(config_copy, change, message):
    edit(config_copy / "agencies.yaml", change)
    assert any(message in p for p in problems_of(config_copy)), problems_of(config_copy)


def test_missing_numbers_and_sources_are_warned():
    warnings = load_content(CONFIG).directory.warnings
    assert "agencies.yaml: agencies polres_oki: public_phone: none with a public source; the operator must fill it" \
        in warnings
    assert any("polres_lubuklinggau: source: unverified" in w for w in warnings)


def test_cli_validate_config_lists_screens_and_fails_on_errors(runner):
    result = runner.invoke(args=["validate-config", "--show"])
    assert result.exit_code == 0, result.output
    assert "--- main [id] page 1:" in result.output and "GSM-7" in result.output
    assert "0 errors" in result.output and "warning: agencies.yaml" in result.output


def test_cli_validate_config_reports_broken_config(config_copy, settings_overrides):
    """An operator command loads broken content anyway (as `flask` does, inside click) so that
    validate-config can name every error and exit 1."""
    import click

    from gateway import create_app

    edit(config_copy / "flows" / "ussd.yaml", FLOW_BREAKS["unknown goto"][0])
    with click.Context(click.Command("flask")):
        app = create_app({**settings_overrides, "config_dir": config_copy})
    result = app.test_cli_runner().invoke(args=["validate-config"])
    assert result.exit_code == 1
    assert "error: ussd: screens.main.options.0.goto: unknown screen 'nowhere'" in result.output


def test_serving_refuses_broken_config(config_copy, settings_overrides):
    from gateway import create_app

    edit(config_copy / "flows" / "ussd.yaml", FLOW_BREAKS["unknown goto"][0])
    with pytest.raises(ConfigError, match="unknown screen 'nowhere'"):
        create_app({**settings_overrides, "config_dir": config_copy})


HOME_BREAKS = {
    "home by another key": (lambda d: d["screens"]["helplines"]["options"][0].update(key="9"),
                            "ussd: screens.helplines.options.0.key: the way home is key '99', not '9'"),
    "99 elsewhere": (lambda d: d["screens"]["main"]["options"][0].update(key="99"),
                     "ussd: screens.main.options: key '99' is reserved for navigation"),
    "sub-list of another answer": (lambda d: d["screens"]["category"]["options"][4].update(goto="victim"),
                                   "ussd: screens.category.options.4.goto: a sub-list must be a choice screen"),
}


@pytest.mark.parametrize("change, message", HOME_BREAKS.values(), ids=HOME_BREAKS.keys())
def test_navigation_keys_mean_one_thing(config_copy, change, message):
    edit(config_copy / "flows" / "ussd.yaml", change)
    assert any(message in p for p in problems_of(config_copy)), problems_of(config_copy)
