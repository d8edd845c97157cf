"""Reading an SMS that is not a command: what it is, where, what happened, to whom.

A message is folded into tokens (flows.wording), then its cues are found, longest phrase
first, each word used once: `paspor ditahan` (a report) claims its words before `ditahan`
(someone held). What it is follows from the cues, in this order:

- *distress*: someone held, locked up, missing, beaten, threatened, taken; or a help word
  (`tolong`) with a description of a situation; or fear with a sign of trafficking;
- *report*: signs of trafficking (recruiters, being taken abroad, a passport held, wages not
  paid, a forced marriage …) strong enough to act on;
- *question*: asking for numbers or information, or a help word alone or with a place;
- *chatter*: greetings, thanks, tests; *unknown*: anything else.

The vocabulary is data (config/intake.yaml, config/slang.yaml, the modus words of
config/categories.yaml); this module only weighs it."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import FlowError
from .places import Gazetteer, Kind, Mention, Place
from .wording import Folder, Token

STRONG, WEAK = 2, 1
REPORT_THRESHOLD = 2  # one strong sign, or two weak ones (a modus word counts as weak)
SHORT_MESSAGE_WORDS = 3  # chatter with this many words or fewer, and no cue, is chatter


class Intent(enum.Enum):
    DISTRESS = "distress"
    REPORT = "report"
    QUESTION = "question"
    CHATTER = "chatter"
    UNKNOWN = "unknown"

    @property
    def files_report(self) -> bool:
        return self in (Intent.DISTRESS, Intent.REPORT)


class Cue(enum.Enum):
    DISTRESS = "distress"
    DISTRESS_WEAK = "distress_weak"
    REPORT = "report"
    REPORT_WEAK = "report_weak"
    MODUS = "modus"
    QUESTION = "question"
    HELP = "help"
    ASKING = "asking"
    PEOPLE = "people"
    CHATTER = "chatter"
    TIME = "time"


class Town(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    region: str
    source: str
    alias: bool = False  # only another spelling of the kabupaten/kota: the alert adds nothing


class Vocabulary(BaseModel):
    """config/intake.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    spellings: dict[str, str]
    distress: list[str]
    distress_weak: list[str]
    report: list[str]
    report_weak: list[str]
    question: list[str]
    asking: list[str]
    conditional: list[str]
    help: list[str]
    people: list[str]
    chatter: list[str]
    victims: dict[str, list[str]]
    time: list[str]
    place_markers: list[str]
    not_places: list[str]
    outside: list[str]
    common_word_places: list[str]
    ambiguous_places: list[str]
    towns: list[Town]

    @field_validator("spellings")
    @classmethod
    def _one_word_keys(cls, spellings):
        bad = [k for k in spellings if not k.isascii() or not k.replace("2", "").isalnum() or k != k.lower()]
        if bad:
            raise ValueError(f"spellings must be one lower-case word each: {bad}")
        return spellings

    def cue_lists(self) -> dict[Cue, list[str]]:
        return {Cue.DISTRESS: self.distress, Cue.DISTRESS_WEAK: self.distress_weak, Cue.REPORT: self.report,
                Cue.REPORT_WEAK: self.report_weak, Cue.QUESTION: self.question, Cue.HELP: self.help,
                Cue.PEOPLE: self.people, Cue.CHATTER: self.chatter, Cue.TIME: self.time}


def load_vocabulary(path: Path, slang_path: Optional[Path] = None) -> Vocabulary:
    """config/intake.yaml, its `spellings` laid over config/slang.yaml's."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if slang_path is not None:
            slang = (yaml.safe_load(Path(slang_path).read_text(encoding="utf-8")) or {}).get("spellings", {})
            raw["spellings"] = {**slang, **(raw.get("spellings") or {})}
        return Vocabulary(**raw)
    except ValidationError as exc:
        raise FlowError(f"{Path(path).name}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                        for e in exc.errors()) from None


@dataclass(frozen=True)
class Hit:
    label: object  # a Cue, or a category id for MODUS hits, or a victim kind
    start: int
    end: int


class CueIndex:
    """Labelled phrases over tokens, found leftmost-longest, each token used once."""

    def __init__(self, folder: Folder, phrases: Iterable[tuple[str, object]]):
        self._by_first: dict[str, list[tuple[tuple[Token, ...], object]]] = {}
        for text, label in phrases:
            tokens = folder.fold(text)
            if tokens:
                self._by_first.setdefault(tokens[0].stem, []).append((tokens, label))
        for listed in self._by_first.values():
            listed.sort(key=lambda item: -len(item[0]))

    def hits(self, tokens: tuple[Token, ...], taken: Optional[list[bool]] = None) -> list[Hit]:
        taken = taken if taken is not None else [False] * len(tokens)
        found: list[Hit] = []
        i = 0
        while i < len(tokens):
            hit = None if taken[i] else self._at(tokens, i, taken)
            if hit:
                found.append(hit)
                taken[hit.start:hit.end] = [True] * (hit.end - hit.start)
                i = hit.end
            else:
                i += 1
        return found

    def _at(self, tokens: tuple[Token, ...], i: int, taken: list[bool]) -> Optional[Hit]:
        for phrase, label in self._by_first.get(tokens[i].stem, ()):
            n = len(phrase)
            if i + n <= len(tokens) and not any(taken[i:i + n]) and all(
                    tokens[i + k].matches(phrase[k], after_di=i + k > 0 and tokens[i + k - 1].word == "di")
                    for k in range(n)):
                start = i - 1 if i > 0 and tokens[i - 1].word == "di" and not taken[i - 1] else i
                return Hit(label, start, i + n)
        return None


@dataclass(frozen=True)
class Reading:
    intent: Intent
    region: Optional[str] = None
    place: Optional[Place] = None
    category: Optional[str] = None
    victim: str = "unknown"
    urgent: bool = False
    keep: tuple[str, ...] = ()  # words an alert keeps even when cut: what happened, the place, the time
    cues: dict = field(default_factory=dict, compare=False)  # what was found, for tests and docs

    @property
    def strong(self) -> bool:
        """A clear sign of trafficking (a recruiter, `dijual`, `paspor ditahan` …), not only
        weak ones that a question about a job abroad also has."""
        return self.cues.get(Cue.REPORT, 0) > 0


class Reader:
    """Built once from config; `read` is pure and fast (cached stems, dictionary lookups)."""

    def __init__(self, vocabulary: Vocabulary, folder: Folder, gazetteer: Gazetteer,
                 categories: Mapping[str, Iterable[str]]):
        self.vocabulary, self.folder, self.gazetteer = vocabulary, folder, gazetteer
        self._category_order = {c: i for i, c in enumerate(categories)}
        self._cues = CueIndex(folder, [(p, cue) for cue, listed in vocabulary.cue_lists().items() for p in listed])
        self._modus = CueIndex(folder, [(p, c) for c, listed in categories.items() for p in listed])
        self._asking = CueIndex(folder, [(p, Cue.ASKING) for p in vocabulary.asking]
                                + [(p, "conditional") for p in vocabulary.conditional])
        self._victims = CueIndex(folder, [(p, kind) for kind, listed in vocabulary.victims.items() for p in listed])
        self._victim_order = list(vocabulary.victims)

    def read(self, text: str, whole_answer: bool = False) -> Reading:
        """`whole_answer`: the message answers the place question, so a bare ambiguous name
        (`pali`, `simpang`) is taken as the place."""
        words, capitals = self.folder.spelled_cased(text)
        tokens = self.folder.fold_words(words)
        mentions = self.gazetteer.mentions(words, whole_answer, capitals)
        mention = self.gazetteer.best(mentions)
        places = [False] * len(tokens)
        for m in mentions:
            places[m.start:m.end] = [True] * (m.end - m.start)
        taken = list(places)
        hits = self._cues.hits(tokens, taken)
        counts: dict[Cue, int] = {}
        for hit in hits:
            counts[hit.label] = counts.get(hit.label, 0) + 1
        modus: dict[str, int] = {}
        for hit in self._modus.hits(tokens, list(places)):  # every modus word names the category
            modus[hit.label] = modus.get(hit.label, 0) + (hit.end - hit.start)
            if not any(taken[hit.start:hit.end]):  # a word already read as a cue counts once
                specific = Cue.REPORT if hit.end - hit.start > 1 else Cue.MODUS  # `open bo`, not `admin`
                counts[specific] = counts.get(specific, 0) + 1
        category = min(modus, key=lambda c: (-modus[c], self._category_order[c])) if modus else None
        asks = self._asks(text, tokens, counts)
        intent = self._intent(counts, len(tokens), mention is not None, places, asks)
        victim = self._victim(tokens)
        said = lambda h: " ".join(w for w in words[h.start:h.end] if w != "di")  # noqa: E731
        told = [h for h in hits if h.label is Cue.DISTRESS] or sorted(
            (h for h in hits if h.label is Cue.REPORT), key=lambda h: h.start - h.end)  # the longest says most
        what = said(told[0]) if told else None
        keep = tuple(said(h) for h in hits if h.label is Cue.TIME)
        if mention:
            keep = (" ".join(words[mention.start:mention.end]),) + keep
        if what:
            keep = (what,) + keep
        return Reading(intent, mention.place.region if mention else None, mention.place if mention else None,
                       category, victim, intent is Intent.DISTRESS, keep, counts)

    def _asks(self, text: str, tokens: tuple[Token, ...], counts: dict[Cue, int]) -> bool:
        """Asking about something rather than telling it happened."""
        kinds = {hit.label for hit in self._asking.hits(tokens)}
        question_mark = "?" in text
        if Cue.ASKING in kinds:
            return True
        if "conditional" in kinds:
            return question_mark or Cue.QUESTION in counts
        return question_mark and Cue.PEOPLE not in counts

    def place(self, text: str, whole_answer: bool = True) -> Optional[Mention]:
        words, capitals = self.folder.spelled_cased(text)
        return self.gazetteer.best(self.gazetteer.mentions(words, whole_answer, capitals))

    def _intent(self, counts: dict[Cue, int], n_tokens: int, has_place: bool, taken: list[bool],
                asks: bool) -> Intent:
        c = lambda cue: counts.get(cue, 0)  # noqa: E731
        report = STRONG * c(Cue.REPORT) + WEAK * (c(Cue.REPORT_WEAK) + c(Cue.MODUS))
        if c(Cue.DISTRESS):
            return Intent.DISTRESS
        if c(Cue.DISTRESS_WEAK) and (report or c(Cue.HELP) or c(Cue.DISTRESS_WEAK) > 1) and not asks:
            return Intent.DISTRESS
        if c(Cue.HELP) and report and not asks:  # `tolong, adik saya dibawa calo`
            return Intent.DISTRESS
        if report >= REPORT_THRESHOLD and not asks:
            return Intent.REPORT
        if c(Cue.QUESTION) or c(Cue.HELP) or asks:
            return Intent.QUESTION
        if c(Cue.CHATTER) or (not report and n_tokens - sum(taken) <= SHORT_MESSAGE_WORDS and not has_place):
            return Intent.CHATTER if n_tokens else Intent.UNKNOWN
        return Intent.UNKNOWN

    def _victim(self, tokens: tuple[Token, ...]) -> str:
        kinds = {hit.label for hit in self._victims.hits(tokens)}
        return next((k for k in self._victim_order if k in kinds), "unknown")


ROMAN = {"i": ("1", "satu"), "ii": ("2", "dua"), "iii": ("3", "tiga"), "iv": ("4", "empat")}
NUMBER_WORDS = {spoken: (digit, roman) for roman, (digit, spoken) in ROMAN.items()}


def name_variants(words: list[str]) -> list[list[str]]:
    """`Belitang II` is also written `belitang 2`, `belitang dua`, and often `belitang`;
    `Seberang Ulu Satu` also `seberang ulu 1`, `seberang ulu i` and `seberang ulu`."""
    last = words[-1] if words else ""
    if len(words) > 1 and last in ROMAN:
        return [words] + [words[:-1] + [alt] for alt in ROMAN[last]] + [words[:-1]]
    if len(words) > 1 and last in NUMBER_WORDS and words[:-1] != ["muara"]:  # Muara Dua is a name, not a number
        return [words] + [words[:-1] + [alt] for alt in NUMBER_WORDS[last]] + [words[:-1]]
    return [words]


def build_gazetteer(folder: Folder, vocabulary: Vocabulary, regions: Iterable) -> Gazetteer:
    """Every name of every kabupaten/kota (regions.yaml: name, short form, aliases, capital,
    kecamatan) and the towns of intake.yaml. A one-word name that is an Indonesian word, or a
    name listed as ambiguous, needs a place marker before it."""
    listed_ambiguous = {tuple(folder.spelled(n)) for n in vocabulary.ambiguous_places}
    vocabulary_words = {w for phrases in vocabulary.cue_lists().values() for p in phrases for w in folder.spelled(p)}
    common = folder.root_words | vocabulary_words | set(vocabulary.spellings)

    def ordinary(word: str) -> bool:
        """An Indonesian word, or one derived from one (`selangit`: sky-high)."""
        return word in common or folder.fold_words([word])[0].stem in folder.root_words

    def entry(name: str, code: str, kind: Kind):
        words = folder.spelled(name)
        for stripped in (("kabupaten",), ("kota",)):
            if words[:1] == list(stripped) and len(words) > 1:
                words = words[1:]
        ambiguous = tuple(words) in listed_ambiguous or (
            kind is not Kind.REGION and len(words) == 1 and ordinary(words[0]))
        for variant in name_variants(words):
            yield variant, Place(code, name, kind, ambiguous)

    def head_words():
        """`Kikim` for Kikim Barat, Kikim Timur …; `Semendawai` for Semendawai Suku III: the
        first word of several kecamatan names of one kabupaten, when it is no ordinary word."""
        regions_of: dict[str, set[str]] = {}
        for r in regions:
            for kecamatan in r.kecamatan:
                words = folder.spelled(kecamatan.name)
                if len(words) > 1:
                    regions_of.setdefault(words[0], set()).add(r.code)
        for head, codes in regions_of.items():
            if len(codes) == 1 and len(head) >= 5 and head not in common:
                yield [head], Place(next(iter(codes)), head.title(), Kind.AREA)

    def names():
        for r in regions:
            for name in (r.name, r.short, *r.aliases):
                yield from entry(name, r.code, Kind.REGION)
            yield from entry(r.capital, r.code, Kind.CAPITAL)
        for town in vocabulary.towns:
            yield from entry(town.name, town.region, Kind.REGION if town.alias else Kind.TOWN)
        for r in regions:
            for kecamatan in r.kecamatan:
                yield from entry(kecamatan.name, r.code, Kind.KECAMATAN)
        yield from head_words()
    entries = list(names())
    return Gazetteer(entries, vocabulary.place_markers, vocabulary.not_places,
                     frozenset(common - {w for ws, _ in entries for w in ws if len(ws) == 1}),
                     outside=[folder.spelled(n) for n in vocabulary.outside],
                     common_word_places={tuple(folder.spelled(n)) for n in vocabulary.common_word_places})
