"""Check a flow against its catalogue before it serves anyone.

Every target exists, every option key is unique and clear of the navigation keys (the home key
only ever leads home, and every way home uses it), every text exists in every language, and
every screen a caller can see fits the limit in GSM-7, rendered with the worst case of each
answer and with the "wrong choice" hint on top."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping, Optional

from .engine import Engine, FlowData, State
from .gsm import encoding, septets
from .i18n import Catalog
from .model import Flow, TextPart


@dataclass(frozen=True)
class Rendered:
    screen: str
    lang: str
    page: int
    text: str

    @property
    def length(self) -> int:
        return septets(self.text)

    @property
    def encoding(self) -> str:
        return encoding(self.text)


def check(flow: Flow, catalog: Catalog, data: Optional[FlowData] = None,
          effects: Mapping[str, Mapping[str, str]] = None) -> tuple[list[str], list[Rendered]]:
    """Return (problems, every rendered screen). `effects` maps each effect the caller knows
    to a sample of the placeholders it fills (e.g. submit_report -> {"ref": "K7Q2MX"})."""
    effects, data = effects or {}, data or FlowData()
    problems: list[str] = []
    where = lambda name, fld: f"{flow.name}: screens.{name}.{fld}"  # noqa: E731
    screens = flow.screens
    fields = {s.field for s in screens.values() if s.field}
    keys_ = flow.keys
    reserved = {keys_.exit, keys_.back, keys_.more, keys_.home}
    if len(reserved) < 4:
        problems.append(f"{flow.name}: keys: exit, back, more and home must be four different keys")

    for ref, label in ((flow.start, "start"), (flow.exit_screen, "exit_screen")):
        if ref not in screens:
            problems.append(f"{flow.name}: {label}: unknown screen {ref!r}")
    if flow.exit_screen in screens and screens[flow.exit_screen].type != "end":
        problems.append(f"{flow.name}: exit_screen: {flow.exit_screen!r} must be an end screen")

    targets = {flow.start, flow.exit_screen}
    for name, screen in screens.items():
        needs = {"menu": ("options",), "choice": ("options", "field", "next"),
                 "list": ("source", "field", "next"), "end": ()}[screen.type]
        for fld in needs:
            if not getattr(screen, fld) and not (fld == "options" and screen.type == "menu" and screen.more):
                problems.append(f"{where(name, fld)}: required for a {screen.type} screen")
        if screen.more and screen.type not in ("menu", "choice"):
            problems.append(f"{where(name, 'more')}: only a menu or choice screen can continue its text")
        if screen.type in ("list", "end") and screen.options:
            problems.append(f"{where(name, 'options')}: a {screen.type} screen has no options")
        for fld in ("next", "on_error", "more"):
            if getattr(screen, fld):
                targets.add(getattr(screen, fld))
                if getattr(screen, fld) not in screens:
                    problems.append(f"{where(name, fld)}: unknown screen {getattr(screen, fld)!r}")
        if screen.source and screen.source not in data.sources:
            problems.append(f"{where(name, 'source')}: unknown source {screen.source!r}")
        if screen.context and screen.context not in data.contexts:
            problems.append(f"{where(name, 'context')}: unknown context {screen.context!r}")
        if screen.effect and screen.effect not in effects:
            problems.append(f"{where(name, 'effect')}: unknown effect {screen.effect!r}")
        if screen.effect and not screen.on_error:
            problems.append(f"{where(name, 'on_error')}: a screen with an effect needs an error screen")
        # A hop replays the inputs through the screens, effects aside: a session must end where an
        # effect applies, or the next hop would carry on from the effect's screen, not its outcome.
        if (screen.effect or screen.on_error) and screen.type != "end":
            fld = "effect" if screen.effect else "on_error"
            problems.append(f"{where(name, fld)}: only an end screen can have one")
        if screen.on_error in screens and screens[screen.on_error].type != "end":
            problems.append(f"{where(name, 'on_error')}: the error screen {screen.on_error!r} must be an end screen")
        keys = [o.key for o in screen.options]
        if screen.type == "list":
            keys = [str(n) for n in range(1, len(data.sources.get(screen.source, [])) + 1)]
        for key in sorted({k for k in keys if keys.count(k) > 1}):
            problems.append(f"{where(name, 'options')}: key {key!r} used twice")
        home_ok = {o.key for o in screen.options if o.key == keys_.home and o.goto == flow.start}
        for key in sorted((set(keys) & reserved) - home_ok):
            problems.append(f"{where(name, 'options')}: key {key!r} is reserved for navigation")
        for i, opt in enumerate(screen.options):
            if screen.type == "menu" and not opt.goto:
                problems.append(f"{where(name, f'options.{i}.goto')}: a menu option needs a target")
            if screen.type == "choice" and opt.value is None and not opt.goto:
                problems.append(f"{where(name, f'options.{i}.value')}: a choice option needs a value")
            if opt.goto == flow.start and opt.key != keys_.home:
                problems.append(f"{where(name, f'options.{i}.key')}: the way home is key {keys_.home!r}, "
                                f"not {opt.key!r}")
            if screen.type == "choice" and opt.goto in screens and opt.goto != flow.start:
                sub = screens[opt.goto]
                if sub.type != "choice" or sub.field != screen.field:
                    problems.append(f"{where(name, f'options.{i}.goto')}: a sub-list must be a choice "
                                    f"screen for the same answer ({screen.field!r})")
            if opt.goto:
                targets.add(opt.goto)
                if opt.goto not in screens:
                    problems.append(f"{where(name, f'options.{i}.goto')}: unknown screen {opt.goto!r}")
        problems += _check_texts(flow, catalog, name, screen, fields, data, effects)

    for name in sorted(set(screens) - targets):
        problems.append(f"{where(name, 'type')}: unreachable: no option or screen leads here")
    if problems:
        return problems, []
    return _check_fit(flow, catalog, data, effects)


def _check_texts(flow, catalog, name, screen, fields, data, effects) -> list[str]:
    problems = []
    known = set(fields)
    if screen.context:
        sample = data.contexts[screen.context]({}, catalog.languages[0])
        known |= set(sample)
    if screen.effect:
        known |= set(effects.get(screen.effect, {}))
    keys = [p.key if isinstance(p, TextPart) else p for p in screen.text] + [o.label for o in screen.options]
    for part in screen.text:
        if isinstance(part, TextPart):
            for cond in (part.if_, part.unless):
                if cond and cond not in fields:
                    problems.append(f"{flow.name}: screens.{name}.text: condition on unknown answer {cond!r}")
    for lang in catalog.languages:
        for key in keys:
            if not catalog.has(lang, key):
                problems.append(f"{flow.name}: screens.{name}: message {key!r} missing in {lang}.yaml")
                continue
            for ph in sorted(catalog.placeholders(catalog.texts[lang][key]) - known):
                problems.append(f"{lang}.yaml: {key}: unknown placeholder {{{ph}}} on screen {name!r}")
    return problems


def _answer_samples(engine: Engine, flow: Flow, lang: str) -> list[dict]:
    """The longest label of every answer, plus one sample per value of each list field, so a
    context that depends on the chosen kabupaten/kota is rendered for every one of them."""
    longest, every = {}, {}
    for name, screen in flow.screens.items():
        if not screen.field:
            continue
        values = [c.value for c in engine.options(name, lang).values() if c.goto is None]
        if not values:
            continue
        values += every.get(screen.field, [])  # a sub-list adds to the answers of its field
        longest[screen.field] = max(values, key=lambda v: len(engine.answer_label(screen.field, v, lang)))
        every[screen.field] = values
    samples = [dict(longest)]
    for fld, values in every.items():
        samples += [{**longest, fld: v} for v in values]
    flags = [f for f, vs in every.items() if set(vs) <= {True, False}]
    for combo in itertools.product([True, False], repeat=len(flags)):  # conditional lines on and off
        samples.append({**longest, **dict(zip(flags, combo, strict=True))})
    return samples


def _check_fit(flow, catalog, data, effects) -> tuple[list[str], list[Rendered]]:
    engine = Engine(flow, catalog, data)
    problems, rendered, seen = [], [], set()
    for lang in catalog.languages:
        samples = _answer_samples(engine, flow, lang)
        for name, screen in flow.screens.items():
            extra = effects.get(screen.effect, {}) if screen.effect else {}
            worst: dict[int, Rendered] = {}
            for answers in samples:
                base = State(screen=name, lang=lang, answers=answers, history=(("x", 0),), invalid=True)
                for page in range(len(engine._pages(base, extra))):
                    text = engine.reply(State(**{**base.__dict__, "page": page}), extra).text
                    r = Rendered(name, lang, page, text)
                    if page not in worst or r.length > worst[page].length:
                        worst[page] = r
                    if r.length > flow.limit and (name, lang, page) not in seen:
                        seen.add((name, lang, page))
                        problems.append(f"{lang}.yaml: screen {name!r} page {page + 1} is {r.length} "
                                        f"characters, over the limit of {flow.limit}: {text!r}")
                    if r.encoding != "GSM-7" and (name, lang, "enc") not in seen:
                        seen.add((name, lang, "enc"))
                        problems.append(f"{lang}.yaml: screen {name!r} has characters outside GSM-7: {text!r}")
                    if (screen.options or screen.type == "list") and not engine._pages(base, extra)[page]:
                        problems.append(f"{lang}.yaml: screen {name!r} page {page + 1} has no room for an option")
                    if screen.type == "menu" and page and (name, lang, "menu") not in seen:
                        seen.add((name, lang, "menu"))
                        problems.append(f"{lang}.yaml: screen {name!r} needs a second page for its options; a "
                                        f"menu must show every way on at once (shorten its text)")
                    if screen.more and page and (name, lang, "more") not in seen:
                        seen.add((name, lang, "more"))
                        problems.append(f"{lang}.yaml: screen {name!r} pages its options and continues its "
                                        f"text with `more`: both would need the key {flow.keys.more!r}")
            rendered += [worst[p] for p in sorted(worst)]
    return problems, rendered
