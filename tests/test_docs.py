"""The README against the code: the quick start a newcomer follows, and the environment table
an operator configures from. Both went stale silently before; a test notices at once."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ENV_NAME = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{4,})`")  # `REDIS_URL`, `HOST`, `PORT`




class Recorder(Mapping):
    """An empty environment that remembers every name asked of it, however it is asked."""

    def __init__(self):
        self.asked: set[str] = set()

    def __getitem__(self, name):
        self.asked.add(name)
        raise KeyError(name)

    def get(self, name, default=None):
        self.asked.add(name)
        return default

    def __contains__(self, name):
        self.asked.add(name)
        return False

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


def names_settings_reads(monkeypatch) -> set[str]:
    """Settings.from_env run on a recording environment, passed in and as os.environ, so a
    reading through either (or os.getenv) is seen."""
    recorder, settings = Recorder(), Settings  # imported first: imports read the environment too
    monkeypatch.setattr(os, "environ", recorder)
    settings.from_env(recorder)
    monkeypatch.undo()
    return recorder.asked


def configuration_table() -> set[str]:
    """Every variable named in the first cell of a row of the table under `## Configuration`,
    whatever the layout: one name or several a row, padded or aligned cells."""
    start = README.index("## Configuration")
    section = README[start:README.index("\n## ", start + 1)]
    names = set()
    for line in section.splitlines():
        cells = line.strip().strip("|").split("|")
        if line.lstrip().startswith("|") and len(cells) > 1:
            names |= set(ENV_NAME.findall(cells[0]))
    return names


def test_every_variable_settings_reads_is_in_the_readme_table_and_the_reverse(monkeypatch):
    read = names_settings_reads(monkeypatch)
    table = configuration_table()
    assert "REDIS_URL" in read and "REDIS_URL" in table  # the readers above do see something
    assert read - table == set(), "read by Settings, missing from the README's Configuration table"
    run_script = (ROOT / "bin" / "run").read_text(encoding="utf-8")
    by_make_run = {n for n in table - read if re.search(rf"\$\{{?{n}\b", run_script)}
    assert table - read - by_make_run == set(), "in the README's table, read by neither Settings nor bin/run"


def test_the_quick_start_opens_the_readme_and_has_what_a_first_hour_needs():
    head = README[:README.index("\n## ", README.index("## Quick start") + 1)]
    assert len(head.splitlines()) <= 25
    steps = ["make run", "make test", "flask --app gateway simulate", "/console", "demo-coordinator"]
    assert [head.index(step) for step in steps] == sorted(head.index(step) for step in steps)


def test_the_docs_link_only_to_files_a_clone_has():
    """A relative link must name a file inside this repository that exists: a reader of a
    clone has nothing else."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\((?!https?://|#|mailto:)([^)#\s]+)", page.read_text(encoding="utf-8")):
            path = (page.parent / target).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{page.relative_to(ROOT)} links to {target}"


def test_the_readme_does_not_call_sms_a_future_channel():
    assert "soon SMS" not in README
