"""SMS keywords, as plain functions over data from config/.

People text from feature phones in a hurry: `stop.`, `Stop thank you`, `Lapor: anak saya
dibawa calo`. So text is folded to lower-case ASCII words first (accents and punctuation
dropped) and the first word picks the command. Text without one is read by flows.intake."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import FlowError
from .wording import ascii_words

ANY_LANGUAGE = "any"
COMMANDS = ("report", "watch", "join", "info", "signs", "rights", "status", "language", "stop", "start", "ack", "close",
            "migrate")


def words(text: str) -> tuple[str, ...]:
    """Lower-case ASCII words: `Stop, thank-you!` -> ('stop', 'thank', 'you')."""
    return tuple(ascii_words(text))


class Keywords(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    commands: dict[str, dict[str, list[str]]]
    category_choices: list[str]  # the numbered answers to sms.ask_category, in order

    @field_validator("commands")
    @classmethod
    def _known_commands(cls, commands):
        unknown = sorted(set(commands) - set(COMMANDS))
        missing = sorted(set(COMMANDS) - set(commands))
        if unknown or missing:
            raise ValueError(f"unknown commands {unknown}, missing commands {missing}")
        for name, by_lang in commands.items():
            for lang, listed in by_lang.items():
                for word in listed:
                    if len(words(word)) != 1:
                        raise ValueError(f"{name}.{lang}: {word!r} must be one word")
        return commands

    def table(self) -> dict[str, tuple[str, Optional[str]]]:
        """folded word -> (command, language or None)."""
        out = {}
        for name, by_lang in self.commands.items():
            for lang, listed in by_lang.items():
                for word in listed:
                    out[words(word)[0]] = (name, None if lang == ANY_LANGUAGE else lang)
        return out

    def duplicates(self) -> list[str]:
        seen, dup = {}, []
        for name, by_lang in self.commands.items():
            for listed in by_lang.values():
                for word in listed:
                    key = words(word)[0]
                    if key in seen and seen[key] != name:
                        dup.append(f"{word!r} is a keyword of both {seen[key]} and {name}")
                    seen[key] = name
        return dup


def load_keywords(path: Path) -> Keywords:
    path = Path(path)
    try:
        keywords = Keywords(**(yaml.safe_load(path.read_text(encoding="utf-8")) or {}))
    except ValidationError as exc:
        raise FlowError(f"{path.name}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                        for e in exc.errors()) from None
    if problems := keywords.duplicates():
        raise FlowError(f"{path.name}: commands: {p}" for p in problems)
    return keywords


@dataclass(frozen=True)
class Parsed:
    """What an SMS asks for. `command` is None for text that starts with no keyword (an answer
    to a follow-up question, or noise); `rest` is the original text after the keyword."""

    command: Optional[str]
    lang: Optional[str]
    rest: str
    words: tuple[str, ...]


_FIRST_WORD = re.compile(r"^\W*\w+\W*", re.UNICODE)


def parse(text: str, table: Mapping[str, tuple[str, Optional[str]]]) -> Parsed:
    folded = words(text)
    if folded and folded[0] in table:
        command, lang = table[folded[0]]
        return Parsed(command, lang, _FIRST_WORD.sub("", (text or "").strip(), count=1).strip(), folded[1:])
    return Parsed(None, None, (text or "").strip(), folded)
