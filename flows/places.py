"""Places as people name them: a kabupaten/kota, its capital, any of its kecamatan or a
well-known town, spelled as people spell them (`kayu agung`, `muaradua`, `lubuk linggau`,
`plembang`), resolved to the kabupaten/kota.

Matching is on whole spelled words, longest name first, names written together or apart
alike (`kayuagung` = `kayu agung`). A near spelling is found with rapidfuzz, only for words
that are not Indonesian words themselves. A name that is also an ordinary word (`oi`,
`simpang`, `saling`, any one-word name in the stemmer's dictionary) counts only after a place
marker (`di`, `dari`, `kec` …) or when the whole message answers the place question. Where a
message names several places, one after `di`/`dari` wins over one after `ke` (a destination)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Optional

from rapidfuzz import fuzz, process


class Kind(enum.IntEnum):
    """What a name names; a lower value wins when two entries share a name."""

    REGION = 0
    CAPITAL = 1
    TOWN = 2
    KECAMATAN = 3
    AREA = 4  # the shared first word of several kecamatan names: `Kikim` for Kikim Barat, Kikim Timur …


@dataclass(frozen=True)
class Place:
    region: str          # kabupaten/kota code, e.g. 16.08
    name: str            # as written in config, e.g. Belitang
    kind: Kind
    ambiguous: bool = False

    def detail(self) -> Optional[str]:
        """What the alert adds after the kabupaten/kota: `kec. Belitang`, `Kayu Agung`."""
        if self.kind is Kind.REGION:
            return None
        return f"kec. {self.name}" if self.kind is Kind.KECAMATAN else self.name


@dataclass(frozen=True)
class Mention:
    place: Place
    start: int
    end: int
    marker: Optional[str]  # the word before it, when it is a place marker
    fuzzy: bool = False


FUZZY_MIN_LENGTH = 6
FUZZY_CUTOFF = 87.0
# Markers that make even an ordinary word a place name: `kec. Simpang`, `kab OI`.
ADMINISTRATIVE_MARKERS = frozenset({"kab", "kabupaten", "kota", "kec", "kecamatan", "desa", "dusun", "kelurahan",
                                    "kel", "daerah", "wilayah", "district", "village"})
ORIGIN_MARKERS = frozenset({"di", "dari", "asal", "tinggal", "kab", "kabupaten", "kota", "kec", "kecamatan",
                            "desa", "dusun", "kelurahan", "kel", "lokasi", "daerah", "wilayah", "in", "from", "at"})
DESTINATION_MARKERS = frozenset({"ke", "arah", "to"})


class Gazetteer:
    def __init__(self, names: Iterable[tuple[list[str], Place]], markers: Iterable[str],
                 not_places: Iterable[str], common_words: frozenset[str],
                 outside: Iterable[list[str]] = (), common_word_places: Iterable[tuple[str, ...]] = ()):
        """`names`: (spelled words, place). The first entry for a name wins unless a later one
        is of a more general kind (a region name over a kecamatan of the same name).
        `outside`: names of places beyond the province; `common_word_places`: names so
        ordinary that `di` before them is not enough."""
        self.outside = [tuple(o) for o in outside if o]
        self.common_word_places = frozenset(common_word_places)
        self.markers = frozenset(markers)
        self.not_places = frozenset(not_places)
        self.common_words = common_words
        self._by_words: dict[tuple[str, ...], Place] = {}
        for words, place in names:
            for key in {tuple(words), ("".join(words),)}:
                known = self._by_words.get(key)
                if known is None or place.kind < known.kind:
                    self._by_words[key] = place
        self.longest = max(len(k) for k in self._by_words)
        self._fuzzy_keys = [k[0] for k, p in self._by_words.items()
                            if len(k) == 1 and len(k[0]) >= FUZZY_MIN_LENGTH and not p.ambiguous]

    def places(self) -> dict[tuple[str, ...], Place]:
        return dict(self._by_words)

    def mentions(self, words: list[str], whole_answer: bool = False,
                 capitals: Optional[list[bool]] = None) -> list[Mention]:
        """Every place named in `words`, left to right, each word used once. `capitals`: which
        words were written with a capital (a name), where the writer used capitals at all."""
        found: list[Mention] = []
        capitals = capitals or [False] * len(words)
        i = 0
        while i < len(words):
            mention = (self._exact(words, i, whole_answer, capitals[i])
                       or self._fuzzy(words, i, whole_answer))
            if mention and self._elsewhere(words, mention.end):
                i = mention.end
                continue
            if mention:
                found.append(mention)
                i = mention.end
            else:
                i += 1
        return found

    def _marker(self, words: list[str], i: int) -> Optional[str]:
        return words[i - 1] if i > 0 and words[i - 1] in self.markers else None

    def _elsewhere(self, words: list[str], end: int) -> bool:
        """`Martapura Kalsel`, `Jayapura, Papua`: the name is followed by a place beyond Sumsel."""
        after = words[end:end + 3]
        return any(tuple(after[:len(o)]) == o for o in self.outside)

    def _accept(self, place: Place, key: tuple[str, ...], marker: Optional[str], whole_answer: bool,
                capital: bool) -> bool:
        """An ordinary word is a place only when the message says so: `di Belimbing`, `kab
        OI`, the whole answer to the place question; the most ordinary (`simpang`) need an
        administrative marker or a capital."""
        if not place.ambiguous or whole_answer:
            return True
        if key in self.common_word_places:
            return marker in ADMINISTRATIVE_MARKERS or (marker is not None and capital)
        return marker is not None

    def _exact(self, words: list[str], i: int, whole_answer: bool, capital: bool = False) -> Optional[Mention]:
        if words[i] in self.not_places:
            return None
        marker = self._marker(words, i)
        for n in range(min(self.longest, len(words) - i), 0, -1):
            for key in (tuple(words[i:i + n]), ("".join(words[i:i + n]),)):
                place = self._by_words.get(key)
                if place and self._accept(place, key, marker, whole_answer, capital):
                    return Mention(place, i, i + n, marker)
        return None

    def _fuzzy(self, words: list[str], i: int, whole_answer: bool) -> Optional[Mention]:
        """A misspelt name (`plembang`, `lubuklingau`): one word, or two written apart, that
        is no Indonesian word itself."""
        for n in (2, 1):
            if i + n > len(words):
                continue
            parts = words[i:i + n]
            if any(p in self.common_words or p in self.markers or p.isdigit() for p in parts):
                continue
            joined = "".join(parts)
            if len(joined) < FUZZY_MIN_LENGTH:
                continue
            best = process.extractOne(joined, self._fuzzy_keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
            if best:
                place = self._by_words[(best[0],)]
                return Mention(place, i, i + n, self._marker(words, i), fuzzy=True)
        return None

    @staticmethod
    def best(mentions: list[Mention]) -> Optional[Mention]:
        """The place a message is about: named after `di`/`dari` first, then without a marker,
        then as a destination; the first of equals."""
        if not mentions:
            return None

        def rank(m: Mention) -> int:
            if m.marker in ORIGIN_MARKERS:
                return 0
            return 2 if m.marker in DESTINATION_MARKERS else 1
        return min(mentions, key=lambda m: (rank(m), m.fuzzy))
