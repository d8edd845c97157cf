"""Everything the conversation needs, loaded once at start-up: the USSD flow, the message
catalogues and the reference data, joined into one engine.

Texts name numbers (`{n_sapa}`) and the numbers come from config/numbers.yaml, written in here
once; a text that states the law must rest on a sourced entry of config/rights.yaml. Both are
checked when the texts load, so nothing unsourced is ever said to a caller."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Optional

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
from gateway.cases import alerts
from gateway.cases.directory import Directory, Fact, Number, load_directory
from gateway.errors import ConfigError
from gateway.intake.sms_desk import HANDLERS as SMS_HANDLERS
from gateway.intake.ussd import EFFECTS, REF_SAMPLE
from gateway.phones import display_phone

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


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

    def helplines(self, answers, lang: str) -> dict[str, str]:
        """The help-line lines for the region in `answers`, as the USSD screen shows them."""
        return helplines(self.directory, self.catalog, answers, lang)

    def validate(self) -> tuple[list[str], list[Rendered]]:
        samples = {name: effect.sample for name, effect in EFFECTS.items()}
        problems, rendered = check(self.flow, self.catalog, self.engine.data, samples)
        categories = {c.id for c in self.directory.categories}
        problems += [f"keywords.yaml: category_choices: unknown category {c!r}"
                     for c in self.keywords.category_choices if c not in categories]
        problems += [f"intake.yaml: towns: {t.name}: unknown region {t.region!r}"
                     for t in self.vocabulary.towns if t.region not in {r.code for r in self.directory.regions}]
        problems += [f"keywords.yaml: commands: {c!r} has no handler in the SMS desk"
                     for c in self.keywords.commands if c not in SMS_HANDLERS]
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


def _area_numbers(directory: Directory, code: Optional[str]) -> list[Number]:
    """Numbers that work only in some kabupaten/kota (112), for this one."""
    return [n for n in directory.numbers if n.areas is not None and n.shown and code and n.serves(code)]


def helplines(directory: Directory, catalog: Catalog, answers, lang: str) -> dict[str, str]:
    """The help-line screen for a kabupaten/kota: its local units that have a sourced number
    (women's NGOs too), then the national lines; 112 only where the area has a 112 centre. The
    police need no local line: 110 is answered by the nearest police unit."""
    code = answers.get("helpline_region")
    if code is None:  # only the placeholder names are wanted
        return {"region": "", "local": "", "emergency": ""}
    region = directory.region(code)
    local = [a for a in directory.agencies if a.is_local and a.covers(code) and a.public_phone]
    lines = "".join(f"{a.short} {display_phone(a.public_phone)}\n" for a in local)
    emergency = "".join(catalog.text(lang, "helplines.emergency", number=n.dial)
                        for n in _area_numbers(directory, code))
    return {"region": region.short, "local": lines, "emergency": emergency}


def emergency(directory: Directory, catalog: Catalog, answers, lang: str) -> dict[str, str]:
    """`{emergency}` on the report's last screen: " atau 112" where the caller's kabupaten/kota
    has a 112 centre, nothing elsewhere (there 110 is the number)."""
    numbers = _area_numbers(directory, answers.get("region"))
    return {"emergency": "".join(catalog.text(lang, "report.or_emergency", number=n.dial) for n in numbers)}


# ---- numbers and law in the texts -------------------------------------------------------------

_NAMED = re.compile(r"\{n_([a-z0-9_]+)\}")
# A number written into a text instead of named: three digits or more, not a year after "/"
# (UU 21/2007) and not part of a word or a placeholder.
_LITERAL = re.compile(r"(?<![\w/{])\d[\d-]{2,}(?![\w}])")
_LAW = re.compile(r"\b(?:UU|Law) (\d+)/(\d{4})")
_ARTICLE = re.compile(r"\b(?:Ps|Art)\. ?(\d+[A-Z]?(?:(?:, ?| ?- ?| dan | and )\d+[A-Z]?)*)")
RESPONDER_KEYS = ("alert.",)  # texts only responders read: no resident-facing facts in them


def fill_numbers(catalog: Catalog, numbers: tuple[Number, ...]) -> tuple[Catalog, list[str]]:
    """Write each named number into the texts. A name that is unknown, not confirmed, or only
    valid in some areas is an error: such a text would tell someone a number that may not work."""
    by_id, problems, texts = {n.id: n for n in numbers}, [], {}
    for lang, table in catalog.texts.items():
        texts[lang] = {}
        for key, raw in table.items():
            for literal in (m for m in _LITERAL.findall(_NAMED.sub("", raw)) if sum(c.isdigit() for c in m) >= 3):
                problems.append(f"{lang}.yaml: {key}: the number {literal!r} is written into the text; "
                                f"put it in config/numbers.yaml with its source and write {{n_<id>}}")

            def dial(match, key=key, lang=lang):
                number = by_id.get(match.group(1))
                if number is None:
                    problems.append(f"{lang}.yaml: {key}: unknown number {match.group(0)} (config/numbers.yaml)")
                elif not number.shown:
                    problems.append(f"{lang}.yaml: {key}: {match.group(0)} is still to verify; "
                                    f"it cannot be shown to residents")
                elif number.areas is not None:
                    problems.append(f"{lang}.yaml: {key}: {match.group(0)} works only in some areas; "
                                    f"it cannot be named in a text every caller sees")
                return number.dial if number else match.group(0)

            texts[lang][key] = _NAMED.sub(dial, raw)
    return Catalog(texts), problems


def citations(text: str) -> list[tuple[Optional[str], set[str]]]:
    """(law, articles) cited by a text, in order: `UU 4/2024 Ps. 4, 5` -> [('4 Tahun 2024',
    {'4', '5'})]. An article cited after no law on the same text has law None."""
    found, law = [], None
    for match in sorted([*_LAW.finditer(text), *_ARTICLE.finditer(text)], key=lambda m: m.start()):
        if match.re is _LAW:
            law = f"{match.group(1)} Tahun {match.group(2)}"
            found.append((law, set()))
        else:
            found.append((law, set(re.findall(r"\d+[A-Z]?", match.group(1)))))
    return found


def check_law(catalog: Catalog, facts: tuple[Fact, ...]) -> list[str]:
    """Every law and article a text cites rests on a sourced fact that lists that text."""
    problems = []
    for lang, table in catalog.texts.items():
        for key, text in table.items():
            if key.startswith(RESPONDER_KEYS):
                continue
            cited = citations(text)
            if not cited:
                continue
            mine = [f for f in facts if key in f.keys and f.status == "sourced"]
            if not mine:
                problems.append(f"{lang}.yaml: {key}: states the law with no sourced entry in config/rights.yaml")
                continue
            for law, articles in cited:
                pool = [f for f in mine if law is None or (f.law and law in f.law)]
                if not pool:
                    problems.append(f"{lang}.yaml: {key}: cites UU {law.replace(' Tahun ', '/')} but no entry "
                                    f"in config/rights.yaml for this text is that law")
                    continue
                missing = articles - set().union(*(f.pasal for f in pool))
                if missing:
                    problems.append(f"{lang}.yaml: {key}: cites article {', '.join(sorted(missing))} with no "
                                    f"entry in config/rights.yaml for this text")
    known = {k for table in catalog.texts.values() for k in table}
    for f in facts:
        for key in sorted(set(f.keys) - known):
            problems.append(f"rights.yaml: facts {f.id}: keys: no message {key!r}")
    return list(dict.fromkeys(problems))


def load_content(config_dir: Path = CONFIG_DIR) -> Content:
    """Parse everything under config/; any unreadable file becomes a ConfigError."""
    config_dir = Path(config_dir)
    try:
        flow = load_flow(config_dir / "flows" / "ussd.yaml")
        written = load_catalog(config_dir / "messages")
        directory = load_directory(config_dir)
        keywords = load_keywords(config_dir / "keywords.yaml")
        vocabulary = load_vocabulary(config_dir / "intake.yaml", config_dir / "slang.yaml")
    except FlowError as exc:
        raise ConfigError(exc.problems) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config: {exc}") from None
    catalog, problems = fill_numbers(written, directory.numbers)
    problems += check_law(catalog, directory.facts)
    if problems:
        raise ConfigError(problems)
    data = FlowData(
        # Alphabetical by the name on screen: a caller looks for her own kabupaten/kota, and in
        # alphabetical order she can tell which page it is on without knowing any ranking.
        sources={"regions": [Item(r.code, r.short) for r in sorted(directory.regions, key=lambda r: r.short.lower())]},
        contexts={"helplines": partial(helplines, directory, catalog),
                  "emergency": partial(emergency, directory, catalog)},
    )
    return Content(flow, catalog, directory, Engine(flow, catalog, data), keywords, vocabulary)


def _fingerprint(config_dir: Path) -> tuple:
    """Every file under config/ with its size and modification time: what a load depends on."""
    return tuple(sorted((str(f), f.stat().st_mtime_ns, f.stat().st_size)
                        for f in Path(config_dir).rglob("*") if f.is_file()))


_checked: dict[tuple, tuple[Content, tuple[str, ...]]] = {}


def checked_content(config_dir: Path = CONFIG_DIR) -> tuple[Content, tuple[str, ...]]:
    """Loaded and validated content with its problems, kept per process while config/ is
    unchanged: rendering every screen in every language is most of what building an app costs,
    and a process that builds several (the CLI, the tests) need not do it again. Raises
    ConfigError when config/ cannot be read."""
    key = (str(Path(config_dir).resolve()), _fingerprint(config_dir))
    if key not in _checked:
        content = load_content(config_dir)
        _checked.clear()
        _checked[key] = content, tuple(content.validate()[0])
    return _checked[key]

