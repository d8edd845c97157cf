"""The explicit tables the code dispatches through stay complete and true: the job registry,
the SMS keyword handlers, the USSD effects, the channels and the state moves. A name that
one table knows and another does not fails here, not silently at run time."""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from flows.sms import COMMANDS
from gateway.channels import registry
from gateway.channels.whatsapp import require_signature
from gateway.content import load_content
from gateway.intake.sms_desk import HANDLERS
from gateway.intake.ussd import EFFECTS
from gateway.messaging.jobs import JOBS, JobName
from gateway.store import states
from gateway.web.auth import require_token

ROOT = Path(__file__).resolve().parent.parent


def test_every_job_names_an_rq_entry_point_and_every_entry_point_is_a_job():
    import workers.jobs

    for name, spec in JOBS.items():
        module, _, function = spec.entry_point.rpartition(".")
        assert module == "workers.jobs" and function == name.value, spec
        assert callable(getattr(importlib.import_module(module), function))
    public = {n for n, f in inspect.getmembers(workers.jobs, inspect.isfunction)
              if f.__module__ == "workers.jobs" and not n.startswith("_")}
    assert public == {name.value for name in JobName} == {name.value for name in JOBS}


def test_every_sms_keyword_has_a_handler_and_no_handler_is_orphaned():
    assert set(HANDLERS) == set(COMMANDS) | {"answer"}


def test_every_effect_of_the_flow_is_known_and_every_known_effect_is_used():
    flow = load_content().flow
    used = {screen.effect for screen in flow.screens.values() if screen.effect}
    assert used == set(EFFECTS)


def test_every_webhook_is_behind_the_token_or_a_signature_and_every_sender_is_listed():
    """A provider that signs its callbacks (WhatsApp) is guarded by the signature instead."""
    for bp in registry.WEBHOOKS:
        guards = bp.before_request_funcs[None]
        assert require_token in guards or require_signature in guards, bp.name
    assert set(registry.SENDERS) >= {"africastalking", "8x8", "sink"}


@pytest.mark.parametrize("enum, moves", [
    (states.ReportStatus, states.REPORT_MOVES), (states.MessageState, states.MESSAGE_MOVES),
    (states.AssignmentState, states.ASSIGNMENT_MOVES), (states.BroadcastState, states.BROADCAST_MOVES),
])
def test_every_state_has_its_moves_and_only_moves_to_states_of_its_kind(enum, moves):
    assert set(moves) == set(enum)
    for targets in moves.values():
        assert all(isinstance(t, enum) for t in targets)


def test_a_send_is_claimed_only_from_a_state_that_is_still_owed_a_send():
    claimable = states.sources(states.MESSAGE_MOVES, states.MessageState.SENDING)
    assert set(claimable) == {states.MessageState.QUEUED, states.MessageState.RETRY}
    assert set(claimable) < set(states.UNFINISHED_MESSAGES)


def test_no_code_dispatches_by_a_name_built_from_a_string():
    """`getattr(self, f"_{name}")` hides a handler from every reader and every search."""
    built = re.compile(r"getattr\([^,]+,\s*f[\"']|import_module\(")
    offenders = [str(p.relative_to(ROOT)) for folder in ("gateway", "workers", "flows")
                 for p in (ROOT / folder).rglob("*.py") if built.search(p.read_text())]
    assert offenders == []


def test_validation_names_a_keyword_command_with_no_handler(monkeypatch):
    monkeypatch.delitem(HANDLERS, "signs")
    problems, _ = load_content().validate()
    assert "keywords.yaml: commands: 'signs' has no handler in the SMS desk" in problems
