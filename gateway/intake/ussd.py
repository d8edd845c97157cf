"""One USSD hop, channel-neutral: a UssdHop in, a Reply out.

A hop carries every input so far (Africa's Talking's `text`), so no state is kept between
hops: the engine replays the inputs, a pure function of the flow, which costs less than a
state read from and written back to Redis. Only the screen being shown applies its effect,
and effects are idempotent, so replays and aggregator retries never file a second report.

A session's first hop cannot be told from its `text` (whoever holds the webhook token can send
the whole path at once), so the first hop seen of each session id and number is counted as the
start, in Redis, and its verdict holds for the session's later hops. Redis keeps that verdict
for the session's lifetime and never changes it, so a process keeps a copy of each verdict it
was given, for no longer than Redis keeps it: a later hop of the session that reaches the same
process asks Redis nothing, one that reaches another process asks once and gets the same
verdict. A verdict Redis could not give (Redis down: let through) is never kept.

A screen with no effect is a pure function of the session's inputs (the flow, the texts and
the data it shows are loaded once), so its reply is kept by those inputs, in a bounded cache:
the main menu, the lists, the help-lines, the signs and rights pages are rendered once."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Mapping, Optional

from flows.engine import Reply, State
from gateway.cases import community
from gateway.cases.reports import NewReport, ReportDesk
from gateway.channels.base import UssdHop
from gateway.errors import EffectFailed, LimitReached
from gateway.limits import caller_key
from gateway.settings import SESSION_TTL_SECONDS

if TYPE_CHECKING:
    from gateway.runtime import Runtime


SCREENS_KEPT = 4096   # replies of effect-free screens, by inputs
VERDICTS_KEPT = 8192   # live sessions' verdicts on the limits, by session and number


class UssdService:
    def __init__(self, runtime: Runtime, desk: ReportDesk):
        self.runtime = runtime
        self.engine = runtime.content.engine
        self.flow = runtime.content.flow
        self.desk = desk
        self.static_reply = lru_cache(maxsize=SCREENS_KEPT)(self._static_reply)
        self._verdicts: dict[tuple, tuple[float, bool]] = {}  # key -> (kept until, refused)
        self._verdicts_lock = threading.Lock()
        catalog = self.engine.catalog
        self.too_long = Reply(catalog.text("id", "session.too_long"), end=True)
        self.limited = Reply(catalog.text("id", "session.limited"), end=True)

    def _static_reply(self, inputs: tuple[str, ...]) -> Optional[Reply]:
        """The reply to `inputs` when the screen they lead to has no effect, else None."""
        state = self.engine.run(inputs, self.engine.start())
        if self.flow.screens[state.screen].effect:
            return None
        return self.engine.reply(state)

    def _refused(self, hop: UssdHop, session_ttl: int) -> bool:
        """Limits apply when a session starts, never inside one: a report under way completes,
        and a session refused at its start stays refused."""
        return self._verdict(hop, session_ttl, False)[0]

    def _verdict(self, hop: UssdHop, session_ttl: int, files_report: bool) -> tuple[bool, Optional[bool]]:
        """Whether the session is refused, and for a hop that `files_report` and has to ask
        Redis anyway, the report counted against the daily limit in that same round trip
        (gateway.limits.Limiter.session_verdict_and_report; None: not counted here)."""
        key = (hop.channel, hop.session_id, hop.raw_phone)
        kept = self._verdicts.get(key)
        now = time.monotonic()
        if kept is not None and kept[0] > now:
            return kept[1], None
        rt = self.runtime
        verdict, counted = rt.limiter.session_verdict_and_report(
            rt.limits["ussd"], rt.limits["reports"], self._caller(hop), f"{hop.channel}:{hop.session_id}",
            session_ttl, files_report)
        if verdict is None:  # Redis could not say: let through, keep nothing
            return False, None
        with self._verdicts_lock:
            # kept no longer than Redis keeps it: it was set at the latest now
            self._verdicts[key] = (now + session_ttl, not verdict)
            while len(self._verdicts) > VERDICTS_KEPT:  # the oldest first
                del self._verdicts[next(iter(self._verdicts))]
        return not verdict, counted

    def _caller(self, hop: UssdHop) -> str:
        return caller_key(self.runtime.vault, hop.phone, hop.raw_phone)

    # -- effects: what the screen being shown asks the gateway to make durable ----------------

    def _submit_report(self, hop: UssdHop, state: State, counted: Optional[bool]) -> dict:
        return {"ref": self.desk.submit(NewReport(hop.channel, hop.session_id, hop.phone, state.answers, state.lang,
                                                  raw_phone=hop.raw_phone), counted)}

    def _subscribe_updates(self, hop: UssdHop, state: State, _counted: Optional[bool]) -> dict:
        code = state.answers["subscribe_region"]
        community.subscribe(self.runtime, hop.phone, code)
        return {"region": self.runtime.content.directory.region(code).short}

    def quick_answer(self, hop: UssdHop, session_ttl: int = SESSION_TTL_SECONDS) -> Optional[Reply]:
        """The answer to a hop whose screen has no effect (every hop but the one that files),
        or None: then `answer`, which does the effect's work."""
        if len(hop.inputs) > self.flow.max_inputs:
            return self.too_long
        reply = self.static_reply(hop.inputs)
        if reply is None:
            return None
        return self.limited if self._refused(hop, session_ttl) else reply

    def answer(self, hop: UssdHop, session_ttl: int = SESSION_TTL_SECONDS) -> Reply:
        """`session_ttl`: how long the session's verdict on the limits is kept; a chat menu's
        session idles far longer than a USSD one."""
        reply = self.quick_answer(hop, session_ttl)
        if reply is not None:
            return reply
        state = self.engine.run(hop.inputs, self.engine.start())
        screen = self.flow.screens[state.screen]
        effect = EFFECTS[screen.effect]
        refused, counted = self._verdict(hop, session_ttl, effect.files_report)
        if refused:
            return self.limited
        extra = {}
        try:
            extra = effect.apply(self, hop, state, counted)
        except LimitReached:
            return Reply(self.engine.catalog.text(state.lang, "session.limited"), end=True)
        except EffectFailed:
            state = self.engine.goto(state, screen.on_error)
        return self.engine.reply(state, extra)


@dataclass(frozen=True)
class Effect:
    """Work an end screen asks for before it is shown; `sample` is what its outcome adds to the
    screen's text, so validation can render every screen that names it."""

    apply: Callable[[UssdService, UssdHop, State, Optional[bool]], dict]
    sample: Mapping[str, str]
    files_report: bool = False  # counted against the daily reports limit (gateway.cases.reports)


REF_SAMPLE = {"ref": "K7Q2MX"}
EFFECTS = {
    "submit_report": Effect(UssdService._submit_report, REF_SAMPLE, files_report=True),
    "subscribe_updates": Effect(UssdService._subscribe_updates, {"region": "Muara Enim"}),
}
