"""The shape of a flow file, checked when it is loaded.

A flow is versioned data (`config/flows/*.yaml`): screens that show a text and options.
Four kinds of screen keep the interpreter small:
  menu    options lead to other screens (`goto`)
  choice  options store a `value` in `field`, then go to `next`; an option with a `goto`
          instead opens a sub-list (another choice screen for the same field)
  list    numbered items from a data `source` (paged to fit), stored in `field`, then `next`
  end     closes the session; an `effect` (e.g. submit_report) is applied by the caller
A text too long for one screen continues on the screen named by `more`, reached with the same
key (`98`) that pages a long list, so a caller learns one key for "next" everywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import FlowError

LANG_FIELD = "lang"  # a choice on this field switches the conversation's language


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(Strict):
    key: str = Field(pattern=r"^[0-9]{1,3}$")
    label: str
    goto: Optional[str] = None
    value: Optional[Union[str, bool]] = None


class TextPart(Strict):
    """A message shown only when an answer is true (`if`) or false (`unless`)."""

    key: str
    if_: Optional[str] = Field(default=None, alias="if")
    unless: Optional[str] = None


class Screen(Strict):
    type: Literal["menu", "choice", "list", "end"]
    text: list[Union[str, TextPart]]
    options: list[Option] = []
    field: Optional[str] = None
    source: Optional[str] = None
    next: Optional[str] = None
    context: Optional[str] = None
    effect: Optional[str] = None
    on_error: Optional[str] = None
    more: Optional[str] = None  # the screen that continues this text, behind the paging key

    def __init__(self, **data):
        if isinstance(data.get("text"), str):
            data["text"] = [data["text"]]
        super().__init__(**data)


class Keys(Strict):
    """Navigation keys, the same on every screen. `home` is the only key that leads to the main
    menu, and no list reaches it (17 kabupaten/kota), so it never means two things."""

    exit: str = "00"
    back: str = "0"
    more: str = "98"
    home: str = "99"


class Flow(Strict):
    version: int
    start: str
    exit_screen: str
    limit: int = 182
    max_inputs: int = 50
    keys: Keys = Keys()
    screens: dict[str, Screen]
    name: str = "flow"


def load_flow(path: Path) -> Flow:
    """Parse a flow file; every structural problem is reported with its location."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        flow = Flow(name=path.stem, **(raw or {}))
    except ValidationError as exc:
        raise FlowError(
            f"{path.name}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ) from None
    except TypeError as exc:
        raise FlowError(f"{path.name}: {exc}") from None
    return flow
