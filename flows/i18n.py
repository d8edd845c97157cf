"""Message catalogues: one YAML mapping per language, looked up by dotted key."""
from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import FlowError

DEFAULT_LANGUAGE = "id"


@dataclass(frozen=True)
class Catalog:
    """Texts per language; `text(lang, key)` falls back to the default language."""

    texts: dict[str, dict[str, str]]

    @property
    def languages(self) -> list[str]:
        return list(self.texts)

    def has(self, lang: str, key: str) -> bool:
        return key in self.texts.get(lang, {})

    def text(self, lang: str, key: str, **params) -> str:
        table = self.texts.get(lang) or self.texts[DEFAULT_LANGUAGE]
        raw = table.get(key, self.texts[DEFAULT_LANGUAGE].get(key))
        if raw is None:
            raise KeyError(f"no message {key!r} in {lang!r}")
        return raw.format(**params) if params else raw

    @staticmethod
    def placeholders(raw: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(raw) if name}


def _flatten(prefix: str, node, out: dict[str, str], where: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}{key}.", value, out, where)
    elif isinstance(node, str):
        out[prefix[:-1]] = node  # leading spaces are meaningful in fragments joined later
    else:
        raise FlowError(f"{where}: {prefix[:-1]}: expected text, got {type(node).__name__}")


def load_catalog(directory: Path) -> Catalog:
    """Read `<lang>.yaml` files; nested keys become dotted keys (`report.done`)."""
    texts: dict[str, dict[str, str]] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        flat: dict[str, str] = {}
        _flatten("", yaml.safe_load(path.read_text(encoding="utf-8")) or {}, flat, path.name)
        texts[path.stem] = flat
    if DEFAULT_LANGUAGE not in texts:
        raise FlowError(f"{directory}: no {DEFAULT_LANGUAGE}.yaml (the default language)")
    return Catalog(texts)
