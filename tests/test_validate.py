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
    "bad type": (lambda d: d["screens"]["main"].update(type="carousel"), "ussd.yaml: screens.main.type:"),
    "reserved key": (lambda d: d["screens"]["victim"]["options"][0].update(key="98"),
                     "ussd: screens.victim.options: key '98' is reserved for navigation"),
    "99 elsewhere": (lambda d: d["screens"]["main"]["options"][0].update(key="99"),
                     "ussd: screens.main.options: key '99' is reserved for navigation"),
    "limit": (lambda d: d.update(limit=100), "over the limit of 100"),
    "home by another key": (lambda d: d["screens"]["helplines"]["options"][0].update(key="9"),
                            "ussd: screens.helplines.options.0.key: the way home is key '99', not '9'"),
    "unknown next": (lambda d: d["screens"]["victim"].update(next="nope"),
                     "ussd: screens.victim.next: unknown screen 'nope'"),
    "missing field": (lambda d: d["screens"]["victim"].pop("field"),
                      "ussd: screens.victim.field: required for a choice screen"),
    "menu on two pages": (lambda d: d["screens"]["rights"].update(text="signs.p1"),
                          "screen 'rights' needs a second page for its options"),
    "unknown source": (lambda d: d["screens"]["region"].update(source="villages"),
                       "ussd: screens.region.source: unknown source 'villages'"),
    "unreachable": (lambda d: d["screens"].update(orphan={"type": "end", "text": "exit.text"}),
                    "ussd: screens.orphan.type: unreachable"),
    "sub-list of another answer": (lambda d: d["screens"]["category"]["options"][4].update(goto="victim"),
                                   "ussd: screens.category.options.4.goto: a sub-list must be a choice screen"),
    "effect on a screen that goes on": (lambda d: d["screens"]["victim"].update(effect="submit_report",
                                                                                on_error="submit_failed"),
                                        "ussd: screens.victim.effect: only an end screen can have one"),
    "error screen that goes on": (lambda d: d["screens"]["submitted"].update(on_error="victim"),
                                  "ussd: screens.submitted.on_error: the error screen 'victim' must be an end screen"),
}


MESSAGE_BREAKS = {
    "missing translation": (lambda d: d["report"].pop("victim"), "message 'report.victim' missing in en.yaml"),
    "unknown placeholder": (lambda d: d["report"].update(done="Code {reff}"),
                            "en.yaml: report.done: unknown placeholder"),
    "too long": (lambda d: d["report"].update(urgent="Danger? " * 30), "en.yaml: screen 'urgent' page 1 is"),
    "not GSM-7": (lambda d: d["report"].update(urgent="Bahaya sekarang? \u2013 ya"), "outside GSM-7"),
}


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


# ---- numbers and legal statements: nothing unsourced is said to a resident ---------------

def test_a_number_without_a_source_is_refused(config_copy):
    edit(config_copy / "numbers.yaml", lambda d: d["numbers"][1].update(source="unverified"))
    assert "numbers.yaml: numbers sapa: source: no source: give the public page (https://...) that says it" \
        in problems_of(config_copy)


def test_a_legal_statement_without_a_source_is_refused(config_copy):
    edit(config_copy / "rights.yaml", lambda d: d["facts"][0].update(source="the law"))
    assert "rights.yaml: facts uu21_ps26_consent: source: no source: give the public page (https://...) that says it" \
        in problems_of(config_copy)


def test_a_text_citing_an_article_no_fact_backs_is_refused(config_copy):
    edit(config_copy / "messages" / "en.yaml",
         lambda d: d["rights"].update(tppo_2="Reporters are always anonymous (Law 21/2007 Art. 33)."))
    assert "en.yaml: rights.tppo_2: cites article 33 with no entry in config/rights.yaml for this text" \
        in problems_of(config_copy)


def test_a_text_citing_law_with_no_fact_at_all_is_refused(config_copy):
    edit(config_copy / "messages" / "id.yaml", lambda d: d["exit"].update(text="Terima kasih (UU 12/2022 Ps. 10)."))
    assert "id.yaml: exit.text: states the law with no sourced entry in config/rights.yaml" in problems_of(config_copy)


def test_a_fact_to_verify_cannot_be_shown(config_copy):
    edit(config_copy / "rights.yaml", lambda d: d["facts"][0].update(status="to_verify"))
    assert any("facts uu21_ps26_consent: keys: a fact to verify is shown to nobody" in p
               for p in problems_of(config_copy))


NUMBER_BREAKS = {
    "written into a text": (lambda d: d["session"].update(too_long="Telepon 0800-1000."),
                            "id.yaml: session.too_long: the number '0800-1000' is written into the text"),
    "unknown name": (lambda d: d["session"].update(too_long="Telepon {n_nobody}."),
                     "id.yaml: session.too_long: unknown number {n_nobody}"),
    "still to verify": (lambda d: d["session"].update(too_long="Telepon {n_sapa_021}."),
                        "id.yaml: session.too_long: {n_sapa_021} is still to verify"),
    "112 everywhere": (lambda d: d["session"].update(too_long="Telepon {n_emergency}."),
                       "id.yaml: session.too_long: {n_emergency} works only in some areas"),
}


def test_an_old_check_is_a_warning_not_an_error(config_copy):
    edit(config_copy / "numbers.yaml", lambda d: d["numbers"][0].update(checked="2020-01-01"))
    edit(config_copy / "rights.yaml", lambda d: d["facts"][1].update(checked="2020-01-01"))
    content = load_content(config_copy)
    assert content.validate()[0] == []
    warnings = content.directory.warnings
    assert "numbers.yaml: numbers police: checked: 2020-01-01 is more than a year ago; confirm it again" in warnings
    assert "rights.yaml: facts uu21_ps27_debt: checked: 2020-01-01 is more than a year ago; check the law again" \
        in warnings


def _pick(engine, state, label):
    """Choose a kabupaten/kota by name on a list screen, paging on as a caller would."""
    key = next(k for k, c in engine.options(state.screen, state.lang).items() if c.label == label)
    return engine.step(state if key in engine.shown(state) else engine.step(state, "98"), key)


def test_112_is_shown_only_where_a_centre_is_confirmed():
    engine = load_content(CONFIG).engine
    assert "Darurat 112" in engine.reply(_pick(engine, engine.run(["2"]), "OKI")).text
    assert "112" not in engine.reply(_pick(engine, engine.run(["2"]), "Lahat")).text


def _breaks(path: str, table: dict) -> list:
    return [pytest.param(path, change, message, id=f"{path}: {name}") for name, (change, message) in table.items()]


# Every way of breaking the content above, in the file it is made in: validation names the
# file, the entry and the field, so an operator finds what to mend.
CONFIG_BREAKS = [*_breaks("flows/ussd.yaml", FLOW_BREAKS),
                 *_breaks("messages/en.yaml", MESSAGE_BREAKS), *_breaks("messages/id.yaml", NUMBER_BREAKS),
                 *_breaks("agencies.yaml", DIRECTORY_BREAKS)]


@pytest.mark.parametrize("path, change, message", CONFIG_BREAKS)
def test_each_config_error_names_where_it_is(config_copy, path, change, message):
    edit(config_copy / path, change)
    assert any(message in p for p in problems_of(config_copy)), problems_of(config_copy)
