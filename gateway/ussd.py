"""One USSD hop, channel-neutral: a UssdHop in, a Reply out.

A channel that sends every input so far (Africa's Talking's `text`) keeps no state between
hops: the engine replays the inputs, a pure function of the flow. That is cheaper than a state
cached in Redis (about 25 µs to replay a report's seven keys, against about 150 µs for reading
and writing the state; BENCHMARKS.md). A channel that sends only the latest answer has its
state kept in Redis (gateway.sessions) between hops. Only the screen being shown applies its
effect, and effects are idempotent, so replays and aggregator retries never file a second report.

Every hop asks Redis one thing: its session's verdict on the per-number limits. A session's
first hop cannot be told from its `text` (whoever holds the webhook token can send the whole
path at once), so the first hop seen of each session id and number is counted as the start,
and its verdict holds for the session's later hops."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

from config.settings import SESSION_TTL_SECONDS
from flows.engine import Reply, State

from . import community
from .errors import EffectFailed, LimitReached
from .limits import caller_key
from .phones import normalise
from .reports import NewReport, ReportDesk
from .sessions import SessionStore


@dataclass(frozen=True)
class UssdHop:
    channel: str
    session_id: str
    raw_phone: Optional[str]  # as the channel sent it; read through `phone`
    inputs: tuple[str, ...]
    cumulative: bool = True  # inputs holds the whole session, not only the latest answer

    @cached_property
    def phone(self) -> Optional[str]:
        """E.164, or None when not a valid number. Parsed once per hop, on first use."""
        return normalise(self.raw_phone)


def kept_state(flow, state: State) -> dict:
    """What Redis holds between hops for a channel that sends the latest answer alone."""
    return {"v": flow.version, "st": state.to_dict()}


class UssdService:
    def __init__(self, runtime, sessions: SessionStore, desk: ReportDesk):
        self.runtime = runtime
        self.engine = runtime.content.engine
        self.flow = runtime.content.flow
        self.sessions, self.desk = sessions, desk

    def _resume(self, hop: UssdHop) -> tuple[State, tuple[str, ...]]:
        """The state to continue from, and the inputs still to apply to it."""
        if hop.cumulative:
            return self.engine.start(), hop.inputs
        kept = self.sessions.load(hop.channel, hop.session_id)
        if kept and kept.get("v") == self.flow.version:
            try:
                return State.from_dict(kept["st"]), hop.inputs
            except (KeyError, TypeError, ValueError):  # a state in another shape (another release)
                pass
        # Lost, expired or from another flow version: the answer was meant for a screen we can
        # no longer tell, so the caller starts again from the first one.
        return self.engine.start(), ()

    def _keep(self, hop: UssdHop, state: Optional[State]) -> None:
        """Between hops, only a channel that sends the latest answer alone needs its state;
        `None` when the session is over."""
        if hop.cumulative:
            return
        if state is None:
            self.sessions.delete(hop.channel, hop.session_id)
        else:
            self.sessions.save(hop.channel, hop.session_id, kept_state(self.flow, state))

    def _refused(self, hop: UssdHop) -> bool:
        """Limits apply when a session starts, never inside one: a report under way completes,
        and a session refused at its start stays refused."""
        rt = self.runtime
        return not rt.limiter.session_start(rt.limits["ussd"], rt.limits["reports"], self._caller(hop),
                                            f"{hop.channel}:{hop.session_id}", SESSION_TTL_SECONDS)

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

    def answer(self, hop: UssdHop) -> Reply:
        if len(hop.inputs) > self.flow.max_inputs:
            self._keep(hop, None)
            return Reply(self.engine.catalog.text("id", "session.too_long"), end=True)
        if self._refused(hop):
            return Reply(self.engine.catalog.text("id", "session.limited"), end=True)
        state, todo = self._resume(hop)
        state = self.engine.run(todo, state)
        extra = {}
        screen = self.flow.screens[state.screen]
        if screen.effect:
            try:
                extra = getattr(self, f"_{screen.effect}")(hop, state)
            except LimitReached:
                self._keep(hop, None)
                return Reply(self.engine.catalog.text(state.lang, "session.limited"), end=True)
            except EffectFailed:
                state = self.engine.goto(state, screen.on_error)
        reply = self.engine.reply(state, extra)
        self._keep(hop, None if reply.end else state)
        return reply
