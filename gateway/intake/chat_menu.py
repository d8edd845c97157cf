"""The USSD menu on a chat app: one screen per message, the same flow, the same effects.

A USSD hop carries every input of its session; a chat message carries one. So the inputs are
kept in Redis, a list per person (keyed by the blind index of the number, never the number)
that expires when the person stops answering, and each message replays the whole list through
UssdService.answer exactly as a USSD hop would: the same screens, the same limits, a report
filed once per menu session (its session id is the report's session key), `00` ending
everything with nothing saved.

A message belongs to the menu when it is `MENU`, when it is a greeting (`Hai`, `Halo`) as a
number's first message on the app, or when the number has a menu open and the message is a
menu key (a number of at most three digits: an option, `0`, `00`, `98`, `99`). Anything else
closes the menu and goes to the desk as an SMS would: a story in plain words, a keyword, a cry
for help is read there, never answered "Coba lagi"; a STOP always reaches the desk. Each entry
names the inbound message that added it, so a worker running the same message twice replays
the menu, never adds the key twice. When Redis cannot be read the message goes to the desk:
keywords and plain words still work."""
from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Optional

from redis.exceptions import RedisError

from gateway.channels.base import UssdHop

if TYPE_CHECKING:
    from gateway.intake.ussd import UssdService
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

MENU_IDLE_SECONDS = 15 * 60  # a chat menu left this long is closed; the next message goes to the desk
OPEN_WORDS = frozenset({"menu"})
GREETINGS = frozenset({"hai", "halo", "hallo", "hi", "hello"})
_SEP = "|"
# What a screen can accept: option keys are 1-3 digits (flows.model.Option), and so are the
# navigation keys. A wrong number still goes to the menu, which answers "Coba lagi".
MENU_KEY = re.compile(r"[0-9]{1,3}")


def _key(channel: str, index: str) -> str:
    return f"menu:{channel}:{index}"


class ChatMenu:
    def __init__(self, runtime: Runtime, ussd: UssdService):
        self.rt, self.ussd = runtime, ussd

    def close(self, channel: str, sender: str) -> None:
        try:
            self.rt.redis.delete(_key(channel, self.rt.vault.blind_index(sender)))
        except RedisError:
            pass

    def is_open(self, channel: str, sender: str) -> bool:
        try:
            return bool(self.rt.redis.exists(_key(channel, self.rt.vault.blind_index(sender))))
        except RedisError:
            return False

    @staticmethod
    def opens(text: str, first_message: bool) -> bool:
        word = text.strip().strip("!.?").lower()
        return word in OPEN_WORDS or (first_message and word in GREETINGS)

    @staticmethod
    def is_key(text: str) -> bool:
        """Whether an open menu takes this message as a key press."""
        return MENU_KEY.fullmatch(text.strip()) is not None

    def answer(self, inbound_id: int, channel: str, sender: str, text: str, start: bool) -> Optional[str]:
        """The screen this message leads to, or None when Redis cannot be read (the desk then
        answers). `start`: the message opens a new menu session (MENU, or a first greeting)."""
        key = _key(channel, self.rt.vault.blind_index(sender))
        try:
            entries = self._record(key, inbound_id, text, start)
        except RedisError as exc:
            log.warning("chat menu unavailable (%s): the message goes to the desk", type(exc).__name__)
            return None
        session_id, inputs = self._replay(entries, inbound_id)
        reply = self.ussd.answer(UssdHop(channel, session_id, sender, tuple(inputs)), session_ttl=MENU_IDLE_SECONDS)
        if reply.end:
            self.close(channel, sender)
        return reply.text

    def _record(self, key: str, inbound_id: int, text: str, start: bool) -> list[str]:
        """The session's entries with this message's in place: the first entry names the
        session, each later one the message and the key it carried."""
        redis = self.rt.redis
        entries = [e.decode() for e in redis.lrange(key, 0, -1)]
        if any(e.split(_SEP, 1)[0] == str(inbound_id) for e in entries):
            return entries  # this message was handled before: replay it as it was
        if start:
            entries = [f"{inbound_id}{_SEP}{uuid.uuid4().hex}"]
        else:
            entries.append(f"{inbound_id}{_SEP}{text.strip()}")
        with redis.pipeline() as pipe:
            pipe.delete(key).rpush(key, *entries).expire(key, MENU_IDLE_SECONDS).execute()
        return entries

    @staticmethod
    def _replay(entries: list[str], inbound_id: int) -> tuple[str, list[str]]:
        """The session id and the keys up to this message's."""
        opened_by, _, session_id = entries[0].partition(_SEP)
        inputs: list[str] = []
        if opened_by == str(inbound_id):
            return session_id, inputs
        for entry in entries[1:]:
            message, _, key = entry.partition(_SEP)
            inputs.append(key)
            if message == str(inbound_id):
                break
        return session_id, inputs
