"""The interpreter: a session's state is a pure function of the flow and the inputs so far.

That property is what lets the gateway replay Africa's Talking's accumulated `text` on every
hop, keeping no state between hops, and land on exactly the screen the caller is on.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Optional

from .i18n import DEFAULT_LANGUAGE, Catalog
from .model import LANG_FIELD, Flow, Screen, TextPart


@dataclass(frozen=True)
class Item:
    """One entry of a list source (a kabupaten/kota, say): stored `value`, shown `label`."""

    value: str
    label: str


@dataclass(frozen=True)
class FlowData:
    """What a flow needs from outside: item lists, and context providers for screen texts.

    A context provider maps (answers, lang) to the placeholders of a screen's text; `samples`
    yields every answers mapping worth rendering when validating that screens fit."""

    sources: Mapping[str, list[Item]] = field(default_factory=dict)
    contexts: Mapping[str, Callable[[Mapping, str], Mapping[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class State:
    screen: str
    lang: str = DEFAULT_LANGUAGE
    page: int = 0
    answers: Mapping[str, object] = field(default_factory=dict)
    history: tuple = ()
    invalid: bool = False

    def to_dict(self) -> dict:
        return {"s": self.screen, "l": self.lang, "p": self.page, "a": dict(self.answers),
                "h": [list(h) for h in self.history], "i": self.invalid}

    @classmethod
    def from_dict(cls, raw: Mapping) -> "State":
        return cls(screen=raw["s"], lang=raw["l"], page=raw["p"], answers=dict(raw["a"]),
                   history=tuple(tuple(h) for h in raw["h"]), invalid=bool(raw["i"]))


@dataclass(frozen=True)
class Reply:
    """A rendered screen. `effect` names the work the caller must do before showing it."""

    text: str
    end: bool
    effect: Optional[str] = None
    on_error: Optional[str] = None


class _Blank(dict):
    def __missing__(self, key):
        return ""


class Engine:
    def __init__(self, flow: Flow, catalog: Catalog, data: Optional[FlowData] = None):
        self.flow, self.catalog, self.data = flow, catalog, data or FlowData()
        self.keys = flow.keys
        # Options and answer labels depend only on the flow, the language and the data:
        # computed once, not on every hop.
        self._choices = {(name, lang): self._build_options(screen, lang)
                         for name, screen in flow.screens.items() for lang in catalog.languages}
        self._labels = {lang: {} for lang in catalog.languages}
        for (name, lang), choices in self._choices.items():
            fld = flow.screens[name].field
            if fld:
                for choice in choices.values():
                    if choice.goto is None:  # a sub-list's entry stores nothing
                        self._labels[lang].setdefault(fld, {}).setdefault(_hashable(choice.value), choice.label)
        # How a screen whose text never changes splits into pages: computed once, on first use.
        self._static = {name for name, screen in flow.screens.items() if _is_static(screen, catalog)}
        self._page_cache: dict = {}

    # ---- transitions -------------------------------------------------------------------
    def start(self, lang: str = DEFAULT_LANGUAGE) -> State:
        return State(screen=self.flow.start, lang=lang)

    def is_end(self, state: State) -> bool:
        return self.flow.screens[state.screen].type == "end"

    def run(self, inputs: Iterable[str], state: Optional[State] = None) -> State:
        state = state or self.start()
        for raw in inputs:
            state = self.step(state, raw)
        return state

    def step(self, state: State, raw: str) -> State:
        if self.is_end(state):
            return state
        choice = (raw or "").strip()
        if state.invalid:  # a copy only when there is something to clear: every hop replays every step
            state = replace(state, invalid=False)
        if choice == self.keys.exit:
            return State(screen=self.flow.exit_screen, lang=state.lang)
        if choice == self.keys.back:
            if not state.history:
                return state
            screen, page = state.history[-1]
            return replace(state, screen=screen, page=page, history=state.history[:-1])
        screen = self.flow.screens[state.screen]
        if choice == self.keys.more:
            if state.page + 1 < len(self._pages(state)):
                return self._push(state, state.screen, state.page + 1)
            if screen.more:
                return self._push(state, screen.more, 0)
        # Only what this page shows: a key from another page, or past the end of the list,
        # was never seen by the caller and is refused like any wrong key.
        picked = self.shown(state).get(choice)
        if picked is None:
            return replace(state, invalid=True)
        if screen.type == "menu" or picked.goto:
            return self._goto(state, picked.goto)
        if screen.field == LANG_FIELD:
            return self._goto(replace(state, lang=str(picked.value)), screen.next)
        answers = {**state.answers, screen.field: picked.value}
        return self._goto(replace(state, answers=answers), screen.next)

    def goto(self, state: State, screen: str) -> State:
        """Jump without input, e.g. to the `on_error` screen when an effect failed."""
        return replace(state, screen=screen, page=0, invalid=False)

    def _goto(self, state: State, target: str) -> State:
        if target == self.flow.start:  # home: forget the answers and the way back
            return State(screen=target, lang=state.lang)
        return self._push(state, target, 0)

    @staticmethod
    def _push(state: State, screen: str, page: int) -> State:
        return replace(state, screen=screen, page=page, history=state.history + ((state.screen, state.page),))

    # ---- rendering ---------------------------------------------------------------------
    def reply(self, state: State, extra: Optional[Mapping[str, str]] = None) -> Reply:
        screen = self.flow.screens[state.screen]
        pages = self._pages(state, extra)
        page = min(state.page, len(pages) - 1)
        return Reply(text=self._render(state, page, pages, extra), end=screen.type == "end",
                     effect=screen.effect, on_error=screen.on_error)

    def options(self, screen_name: str, lang: str) -> dict[str, "_Choice"]:
        """The choices a screen offers on all its pages, by key."""
        return self._choices[(screen_name, lang if (screen_name, lang) in self._choices else DEFAULT_LANGUAGE)]

    def shown(self, state: State) -> dict[str, "_Choice"]:
        """The choices on the page the caller is looking at, by key: the only ones accepted."""
        pages = self._pages(state)
        return {c.key: c for c in pages[min(state.page, len(pages) - 1)]}

    def values(self, field_name: str, lang: str) -> list:
        """Every value an answer to `field_name` can take, from all screens that ask for it."""
        return [value for _, value in self._labels.get(lang, {}).get(field_name, {})]

    def _build_options(self, screen: Screen, lang: str) -> dict[str, "_Choice"]:
        if screen.type == "list":
            items = self.data.sources.get(screen.source, [])
            return {str(n): _Choice(str(n), item.label, value=item.value) for n, item in enumerate(items, 1)}
        return {o.key: _Choice(o.key, self.catalog.text(lang, o.label), value=o.value, goto=o.goto)
                for o in screen.options}

    def _params(self, state: State, extra: Optional[Mapping[str, str]]) -> Mapping[str, str]:
        params = _Blank({name: self.answer_label(name, value, state.lang) for name, value in state.answers.items()})
        screen = self.flow.screens[state.screen]
        if screen.context:
            params.update(self.data.contexts[screen.context](state.answers, state.lang))
        params.update(extra or {})
        return params

    def answer_label(self, field_name: str, value, lang: str) -> str:
        """How an answer reads on screen: the label of the option or item that produced it."""
        labels = self._labels.get(lang) or self._labels[DEFAULT_LANGUAGE]
        return labels.get(field_name, {}).get(_hashable(value), str(value))

    def _body(self, state: State, extra) -> list[str]:
        screen = self.flow.screens[state.screen]
        params = self._params(state, extra)
        lines = []
        for part in screen.text:
            if isinstance(part, TextPart):
                if (part.if_ and not state.answers.get(part.if_)) or (part.unless and state.answers.get(part.unless)):
                    continue
                part = part.key
            lines.append(self.catalog.text(state.lang, part).format_map(params))
        return lines

    def _footer(self, state: State) -> str:
        t = lambda key: self.catalog.text(state.lang, key)  # noqa: E731
        exit_ = f"{self.keys.exit} {t('nav.exit')}"
        if state.screen == self.flow.start:
            return exit_
        return f"{self.keys.back} {t('nav.back')} {exit_}"

    def _more_line(self, lang: str) -> str:
        return f"{self.keys.more} {self.catalog.text(lang, 'nav.more')}"

    def _pages(self, state: State, extra=None) -> list[list["_Choice"]]:
        """Split the options into screens that fit the limit, room for the hint kept on each,
        so paging never shifts when a wrong key is pressed."""
        if state.screen in self._static and not extra:
            key = (state.screen, state.lang)
            if key not in self._page_cache:
                self._page_cache[key] = self._split(state, extra)
            return self._page_cache[key]
        return self._split(state, extra)

    def _split(self, state: State, extra) -> list[list["_Choice"]]:
        choices = list(self.options(state.screen, state.lang).values())
        if not choices:
            return [[]]
        fixed = self._body(state, extra) + [self.catalog.text(state.lang, "nav.invalid"), self._footer(state)]
        more = self._more_line(state.lang)
        if self.flow.screens[state.screen].more:  # the line that leads on to the next text
            fixed.append(more)
        budget = self.flow.limit - len("\n".join(fixed))
        if sum(len(c.line) + 1 for c in choices) <= budget:
            return [choices]
        pages, current, used = [], [], 0
        for i, choice in enumerate(choices):
            cost = len(choice.line) + 1
            room = budget - (0 if i == len(choices) - 1 else len(more) + 1)
            if current and used + cost > room:
                pages.append(current)
                current, used = [], 0
            current.append(choice)
            used += cost
        pages.append(current)
        return pages

    def _render(self, state: State, page: int, pages, extra) -> str:
        screen = self.flow.screens[state.screen]
        lines = []
        if state.invalid and screen.type != "end":
            lines.append(self.catalog.text(state.lang, "nav.invalid"))
        lines += self._body(state, extra)
        if screen.type != "end":
            lines += [c.line for c in pages[page]]
            if page + 1 < len(pages) or screen.more:
                lines.append(self._more_line(state.lang))
            lines.append(self._footer(state))
        return "\n".join(line for line in lines if line)


def _is_static(screen: Screen, catalog: Catalog) -> bool:
    """A screen whose text has no placeholder, context or condition looks the same whatever
    was answered, so its pages can be split once."""
    if screen.context or screen.type == "end":
        return False
    for part in screen.text:
        if isinstance(part, TextPart):
            return False
        for lang in catalog.languages:
            if catalog.has(lang, part) and catalog.placeholders(catalog.texts[lang][part]):
                return False
    return True


def _hashable(value):
    """True and 1 are equal as dict keys; keep a boolean answer apart from a numeric one."""
    return (type(value).__name__, value)


@dataclass(frozen=True)
class _Choice:
    key: str
    label: str
    value: object = None
    goto: Optional[str] = None

    @property
    def line(self) -> str:
        return f"{self.key} {self.label}"
