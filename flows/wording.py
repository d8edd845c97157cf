"""Words as people type them: one folded token per word, whatever its spelling or affixes.

An SMS says `tlg sy di kurung di rmh majikan`, `Tolooong`, `anak2`, `dikurungnya`. Each word
is folded to lower-case ASCII, its elongations squeezed (`tolooong` -> `tolong`), its
reduplication dropped (`anak2` -> `anak`), its SMS spelling replaced (`tlg` -> `tolong`,
from the Colloquial Indonesian Lexicon and config/intake.yaml), then stemmed with Sastrawi
(`dikurungnya` -> `kurung`). A token keeps the spelled word (place names are matched on it,
never on a stem) and the *form* of its affixes, so `dikunci` (locked in) and `kunci motor`
(a key) share a stem but not a meaning: see `Token.matches`."""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from Sastrawi.Dictionary.ArrayDictionary import ArrayDictionary
from Sastrawi.Stemmer.Stemmer import Stemmer
from Sastrawi.Stemmer.StemmerFactory import StemmerFactory
from unidecode import unidecode

_NOT_WORD = re.compile(r"[^a-z0-9]+")
_RAW_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ELONGATED = re.compile(r"([a-z])\1{2,}")
_REDUPLICATED = re.compile(r"^([a-z]{2,})2$")
_ROMAN = re.compile(r"^[ivx]+$")  # `Belitang III` is no elongation
PASSIVE_PREFIXES = ("di", "ter", "ke")
ACTIVE_PREFIXES = ("me", "ber", "be", "pe", "per")
STEM_CACHE_SIZE = 50_000  # distinct words remembered; a flood of new words cannot grow it further


class Form(enum.Enum):
    """What the affixes of a word say, enough to tell `dikunci` from `kunci`."""

    ROOT = "root"          # the word is its own stem
    PASSIVE = "passive"    # di-, ter-, ke-: something was done to someone
    ACTIVE = "active"      # me-, ber-, pe-: someone does something
    SUFFIXED = "suffixed"  # only a suffix (-nya, -kan, -an …)


@dataclass(frozen=True)
class Token:
    word: str   # after spelling: `tlg` -> `tolong`
    stem: str
    form: Form

    def matches(self, cue: "Token", after_di: bool) -> bool:
        """A cue in root form matches every form of its stem (`takut`: `ketakutan`); an affixed
        cue needs the same kind of affix (`dikunci`: `dikuncinya`, `di kunci`, not `kunci`)."""
        if self.stem != cue.stem:
            return False
        if cue.form is Form.ROOT or self.form is cue.form:
            return True
        return cue.form is Form.PASSIVE and self.form is Form.ROOT and after_di


def ascii_words(text: str) -> list[str]:
    """Lower-case ASCII words: `Stop, thank-you!` -> ['stop', 'thank', 'you']."""
    return [w for w in _NOT_WORD.split(unidecode(text or "").lower()) if w]


def _form(word: str, stem: str) -> Form:
    if word == stem:
        return Form.ROOT
    if word.startswith(PASSIVE_PREFIXES) and not word.startswith(stem):
        return Form.PASSIVE
    if word.startswith(ACTIVE_PREFIXES) and not word.startswith(stem):
        return Form.ACTIVE
    return Form.SUFFIXED


class Folder:
    """Text -> tokens, with the spellings given; the stemmer's dictionary is Sastrawi's."""

    def __init__(self, spellings: Mapping[str, str]):
        self._spellings = {k: tuple(ascii_words(v)) for k, v in spellings.items()}
        roots = [w for w in StemmerFactory().get_words() if w.strip()]
        stemmer = Stemmer(ArrayDictionary(roots))  # the plain stemmer: its cached twin never forgets
        self.root_words = frozenset(roots)
        self._token = lru_cache(maxsize=STEM_CACHE_SIZE)(lambda word: self._make(stemmer, word))

    @staticmethod
    def _make(stemmer: Stemmer, word: str) -> Token:
        if len(word) <= 3 or not word.isalpha():
            return Token(word, word, Form.ROOT)
        stem = stemmer.stem(word) or word
        return Token(word, stem, _form(word, stem))

    def spelled(self, text: str) -> list[str]:
        """The words of `text` after elongation, reduplication and SMS spelling."""
        return self.spelled_cased(text)[0]

    def spelled_cased(self, text: str) -> tuple[list[str], list[bool]]:
        """`spelled`, and for each word whether it was written with a capital in a message
        that is not shouting: `di Simpang` names a place where `di simpang` may be a corner."""
        out: list[str] = []
        capitals: list[bool] = []
        letters = [ch for ch in text or "" if ch.isalpha()]
        shouting = sum(ch.isupper() for ch in letters) * 2 > len(letters)
        for raw in _RAW_WORD.findall(text or ""):
            capital = not shouting and raw[:1].isupper()
            for folded in ascii_words(raw):
                word = folded if _ROMAN.match(folded) else _ELONGATED.sub(r"\1", folded)
                if word not in self._spellings:
                    word = _REDUPLICATED.sub(r"\1", word)
                spelled = self._spellings.get(word, (word,))
                out.extend(spelled)
                capitals.extend([capital] * len(spelled))
        return out, capitals

    def fold(self, text: str) -> tuple[Token, ...]:
        return tuple(self._token(word) for word in self.spelled(text))

    def fold_words(self, words: list[str]) -> tuple[Token, ...]:
        return tuple(self._token(word) for word in words)
