"""Everything the conversation needs, loaded once at start-up: the USSD flow, the message
catalogues and the reference data, joined into one engine."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import yaml

from flows.engine import Engine, FlowData, Item
from flows.errors import FlowError
from flows.gsm import is_gsm7, septets
from flows.i18n import Catalog, load_catalog
from flows.intake import Reader, Vocabulary, build_gazetteer, load_vocabulary
from flows.model import Flow, load_flow
from flows.sms import Keywords, load_keywords
from flows.validate import Rendered, check
from flows.wording import Folder

from . import alerts
from .directory import Directory, load_directory
from .errors import ConfigError
from .phones import display_phone

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
REF_SAMPLE = {"ref": "K7Q2MX"}  # what submit_report adds to its screen, for validation
EFFECTS = {"submit_report": REF_SAMPLE, "subscribe_updates": {"region": "Muara Enim"}}


SMS_LIMIT = 160


@dataclass(frozen=True)
class Content:
    flow: Flow
    catalog: Catalog
    directory: Directory
    engine: Engine
    keywords: Keywords
    vocabulary: Vocabulary
    keyword_table: dict = field(init=False, repr=False)
    reader: Reader = field(init=False, repr=False)  # free text: what it is, where, what happened

    def __post_init__(self):
        d = self.directory
        object.__setattr__(self, "keyword_table", self.keywords.table())
        folder = Folder(self.vocabulary.spellings)
        object.__setattr__(self, "reader", Reader(self.vocabulary, folder,
                                                  build_gazetteer(folder, self.vocabulary, d.regions),
                                                  {c.id: c.keywords for c in d.categories}))

    def validate(self) -> tuple[list[str], list[Rendered]]:
        problems, rendered = check(self.flow, self.catalog, self.engine.data, EFFECTS)
        categories = {c.id for c in self.directory.categories}
        problems += [f"keywords.yaml: category_choices: unknown category {c!r}"
                     for c in self.keywords.category_choices if c not in categories]
        problems += [f"intake.yaml: towns: {t.name}: unknown region {t.region!r}"
                     for t in self.vocabulary.towns if t.region not in {r.code for r in self.directory.regions}]
        if not problems:
            problems += alerts.check(self.engine, [r.short for r in self.directory.regions], REF_SAMPLE["ref"])
            problems += self._check_sms()
        return problems, rendered

    def _check_sms(self) -> list[str]:
        """Every SMS reply fits one GSM-7 segment, with the longest values it can carry."""
        problems = []
        longest_region = max((r.short for r in self.directory.regions), key=len)
        for lang in self.catalog.languages:
            longest_state = max((v for k, v in self.catalog.texts[lang].items() if k.startswith("sms.state.")),
                                key=len, default="")
            for key, raw in self.catalog.texts[lang].items():
                if not key.startswith("sms."):
                    continue
                try:
                    text = raw.format(ref=REF_SAMPLE["ref"], state=longest_state, region=longest_region)
                except (KeyError, IndexError, ValueError) as exc:
                    problems.append(f"{lang}.yaml: {key}: unknown placeholder {exc}")
                    continue
                if not is_gsm7(text):
                    problems.append(f"{lang}.yaml: {key}: characters outside GSM-7")
                elif septets(text) > SMS_LIMIT:
                    problems.append(f"{lang}.yaml: {key} is {septets(text)} characters, over one SMS ({SMS_LIMIT})")
        return problems


def helplines(directory: Directory, catalog: Catalog, answers, lang: str) -> dict[str, str]:
    """The help-line screen for a kabupaten/kota: its local units with a sourced number; the
    police by 110 when none has one (110 reaches the local police)."""
    code = answers.get("helpline_region")
    if code is None:  # only the placeholder names are wanted
        return {"region": "", "local": ""}
    region = directory.region(code)
    local = [a for a in directory.agencies if a.is_local and a.covers(code) and a.kind != "ngo"]
    lines = [f"{a.short} {display_phone(a.public_phone)}" for a in local if a.public_phone]
    if not lines:
        police = next((a for a in local if a.kind == "police"), None)
        name = police.short if police else region.short
        lines = [catalog.text(lang, "helplines.police_via_110", name=name)]
    return {"region": region.short, "local": "\n".join(lines)}


def load_content(config_dir: Path = CONFIG_DIR) -> Content:
    """Parse everything under config/; any unreadable file becomes a ConfigError."""
    config_dir = Path(config_dir)
    try:
        flow = load_flow(config_dir / "flows" / "ussd.yaml")
        catalog = load_catalog(config_dir / "messages")
        directory = load_directory(config_dir)
        keywords = load_keywords(config_dir / "keywords.yaml")
        vocabulary = load_vocabulary(config_dir / "intake.yaml", config_dir / "slang.yaml")
    except FlowError as exc:
        raise ConfigError(exc.problems) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config: {exc}") from None
    data = FlowData(
        sources={"regions": [Item(r.code, r.short) for r in directory.regions]},
        contexts={"helplines": partial(helplines, directory, catalog)},
    )
    return Content(flow, catalog, directory, Engine(flow, catalog, data), keywords, vocabulary)

