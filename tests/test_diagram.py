"""Content tooling for editors of menus and texts (docs/content.md): `flow-diagram` draws the
USSD tree as Mermaid in Markdown, complete and drawable; `validate-config --show` prints every
screen with its length and encoding and flags what a phone cannot show; and a new language
(the documented Baso Palembang slot) is a file and a menu line, no code."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import click
import pytest
import yaml
from phone import Phone, flask_transport

from gateway import create_app

CONFIG = Path(__file__).resolve().parent.parent / "config"


def _mermaid(output: str) -> list[str]:
    block = re.search(r"```mermaid\n(.*?)```", output, re.S)
    assert block, output
    return block.group(1).splitlines()


@pytest.mark.parametrize("lang, title", [("id", "Aduan perdagangan orang"), ("en", "Trafficking hotline")])
def test_every_screen_and_every_way_out_of_it_is_drawn(runner, runtime, lang, title):
    result = runner.invoke(args=["flow-diagram", "--lang", lang])
    assert result.exit_code == 0, result.output
    lines = _mermaid(result.output)
    assert lines[0] == "flowchart TD"
    flow = runtime.content.flow
    nodes = {m.group(1) for line in lines if (m := re.match(r"\s+s_(\w+)\(?\[", line))}
    edges = {(m.group(1), m.group(2)) for line in lines if (m := re.match(r"\s+s_(\w+) -\.?->\|.*\| s_(\w+)$", line))}
    assert nodes == set(flow.screens)
    expected = set()
    for name, screen in flow.screens.items():
        expected |= {(name, o.goto) for o in screen.options if o.goto}
        expected |= {(name, target) for target in (screen.next, screen.on_error, screen.more) if target}
    assert edges == expected
    assert title in result.output


def test_the_journey_in_the_docs_is_the_one_served(runner):
    """docs/ussd-journey.md is what a newcomer or an editor opens first; it must not drift."""
    drawn = runner.invoke(args=["flow-diagram", "--lang", "en"]).output
    assert (CONFIG.parent / "docs" / "ussd-journey.md").read_text(encoding="utf-8") == drawn, \
        "docs/ussd-journey.md is stale: flask --app gateway flow-diagram --lang en > docs/ussd-journey.md"


def test_labels_cannot_break_the_chart(runner):
    lines = _mermaid(runner.invoke(args=["flow-diagram"]).output)
    for line in lines[1:]:
        labels = re.findall(r'"(.*?)"', line)
        assert all('"' not in label and "<" not in label.replace("<b>", "").replace("</b>", "").replace("<br/>", "")
                   for label in labels), line


def test_an_unknown_language_names_the_ones_there_are(runner):
    result = runner.invoke(args=["flow-diagram", "--lang", "plm"])
    assert result.exit_code != 0 and "no language 'plm'; config/messages has en, id" in result.output


@pytest.fixture
def config_copy(tmp_path):
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def edit(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def operator_app(settings_overrides, config_dir):
    """As the flask CLI builds it: broken content is kept as problems for validate-config."""
    with click.Context(click.Command("flask")):
        return create_app({**settings_overrides, "config_dir": config_dir})


@pytest.mark.parametrize("text, flag", [
    ("Thank you. " * 20, "OVER"),
    ("Terima kasih 🙏", "NOT GSM-7"),
], ids=["too long", "UCS-2"])
def test_show_flags_a_screen_a_phone_cannot_show(config_copy, settings_overrides, text, flag):
    edit(config_copy / "messages" / "en.yaml", lambda d: d["exit"].update(text=text))
    app = operator_app(settings_overrides, config_copy)
    result = app.test_cli_runner().invoke(args=["validate-config", "--show"])
    assert result.exit_code == 1
    header = next(line for line in result.output.splitlines() if line.startswith("--- exit [en] page 1: "))
    length, encoding = re.match(r"--- exit \[en\] page 1: (\d+)/166 (GSM-7|UCS-2)", header).groups()
    assert header.endswith(flag) and int(length) == len(text)
    assert encoding == ("UCS-2" if flag == "NOT GSM-7" else "GSM-7")
    assert "error: en.yaml: screen 'exit'" in result.output
    ok = [line for line in result.output.splitlines() if line.startswith("--- ") and "[id]" in line]
    assert ok and not any(line.endswith(("OVER", "NOT GSM-7")) for line in ok)  # the rest stay unflagged
    app.extensions["gateway"].runtime.db.dispose()


def add_language(config_dir: Path, code: str, name: str) -> None:
    """The steps docs/content.md gives for a new language, with the Indonesian texts as a
    stand-in marked `[plm]` (no source or speaker backs Palembang texts yet)."""
    texts = yaml.safe_load((config_dir / "messages" / "id.yaml").read_text(encoding="utf-8"))
    texts["main"]["title"] = f"[{code}] " + texts["main"]["title"]
    (config_dir / "messages" / f"{code}.yaml").write_text(yaml.safe_dump(texts, allow_unicode=True, sort_keys=False),
                                                           encoding="utf-8")
    for path in (config_dir / "messages").glob("*.yaml"):
        edit(path, lambda d: d["language"].update({code: name}))
    edit(config_dir / "flows" / "ussd.yaml", lambda d: d["screens"]["language"]["options"].append(
        {"key": "3", "label": f"language.{code}", "value": code}))


def test_the_palembang_slot_is_a_file_and_a_menu_line(config_copy, settings_overrides):
    add_language(config_copy, "plm", "Baso Palembang")
    app = operator_app(settings_overrides, config_copy)
    runner = app.test_cli_runner()
    checked = runner.invoke(args=["validate-config"])
    assert checked.exit_code == 0 and "0 errors" in checked.output, checked.output
    drawn = runner.invoke(args=["flow-diagram", "--lang", "plm"])
    assert drawn.exit_code == 0 and "[plm] Aduan perdagangan orang" in drawn.output

    phone = Phone(flask_transport(app.test_client()))
    assert "3 Baso Palembang" in phone.run(["4"])[-1]
    assert phone.press("3").startswith("CON [plm] Aduan perdagangan orang")
    app.extensions["gateway"].runtime.db.dispose()
