"""One USSD hop, channel-neutral: a UssdHop in, a Reply out.

A hop carries every input so far (Africa's Talking's `text`), so no state is kept between
hops: the engine replays the inputs, a pure function of the flow, which costs less than a
state read from and written back to Redis. Only the screen being shown applies its effect,
and effects are idempotent, so replays and aggregator retries never file a second report.

Every hop asks Redis one thing: its session's verdict on the per-number limits. A session's
first hop cannot be told from its `text` (whoever holds the webhook token can send the whole
path at once), so the first hop seen of each session id and number is counted as the start,
and its verdict holds for the session's later hops."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

from flows.engine import Reply, State
from gateway.cases import community
from gateway.cases.reports import NewReport, ReportDesk
from gateway.channels.base import UssdHop
from gateway.errors import EffectFailed, LimitReached
from gateway.limits import caller_key
from gateway.settings import SESSION_TTL_SECONDS

if TYPE_CHECKING:
    from gateway.runtime import Runtime


class UssdService:
    def __init__(self, runtime: Runtime, desk: ReportDesk):
        self.runtime = runtime
        self.engine = runtime.content.engine
        self.flow = runtime.content.flow
        self.desk = desk

    def _refused(self, hop: UssdHop, session_ttl: int) -> bool:
        """Limits apply when a session starts, never inside one: a report under way completes,
        and a session refused at its start stays refused."""
        rt = self.runtime
        return not rt.limiter.session_start(rt.limits["ussd"], rt.limits["reports"], self._caller(hop),
                                            f"{hop.channel}:{hop.session_id}", session_ttl)

    def _caller(self, hop: UssdHop) -> str:
        return caller_key(self.runtime.vault, hop.phone, hop.raw_phone)

    # -- effects: what the screen being shown asks the gateway to make durable ----------------

    def _submit_report(self, hop: UssdHop, state: State) -> dict:
        return {"ref": self.desk.submit(NewReport(hop.channel, hop.session_id, hop.phone, state.answers, state.lang,
                                                  raw_phone=hop.raw_phone))}

    def _subscribe_updates(self, hop: UssdHop, state: State) -> dict:
        code = state.answers["subscribe_region"]
        community.subscribe(self.runtime, hop.phone, code)
        return {"region": self.runtime.content.directory.region(code).short}

    def answer(self, hop: UssdHop, session_ttl: int = SESSION_TTL_SECONDS) -> Reply:
        """`session_ttl`: how long the session's verdict on the limits is kept; a chat menu's
        session idles far longer than a USSD one."""
        if len(hop.inputs) > self.flow.max_inputs:
            return Reply(self.engine.catalog.text("id", "session.too_long"), end=True)
        if self._refused(hop, session_ttl):
            return Reply(self.engine.catalog.text("id", "session.limited"), end=True)
        state = self.engine.run(hop.inputs, self.engine.start())
        extra = {}
        screen = self.flow.screens[state.screen]
        if screen.effect:
            try:
                extra = EFFECTS[screen.effect].apply(self, hop, state)
            except LimitReached:
                return Reply(self.engine.catalog.text(state.lang, "session.limited"), end=True)
            except EffectFailed:
                state = self.engine.goto(state, screen.on_error)
        return self.engine.reply(state, extra)


@dataclass(frozen=True)
class Effect:
    """Work an end screen asks for before it is shown; `sample` is what its outcome adds to the
    screen's text, so validation can render every screen that names it."""

    apply: Callable[[UssdService, UssdHop, State], dict]
    sample: Mapping[str, str]


REF_SAMPLE = {"ref": "K7Q2MX"}
EFFECTS = {
    "submit_report": Effect(UssdService._submit_report, REF_SAMPLE),
    "subscribe_updates": Effect(UssdService._subscribe_updates, {"region": "Muara Enim"}),
}
