"""The flow engine as plain function calls: no Flask, no Redis, no database."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.engine import State
from gateway.content import load_content


@pytest.fixture(scope="module")
def engine():
    return load_content().engine


def test_flows_package_imports_no_infrastructure():
    import subprocess
    import sys

    code = ("import sys, flows.engine, flows.validate, flows.i18n, flows.model; "
            "bad = [m for m in ('flask', 'redis', 'sqlalchemy', 'rq', 'gateway') if m in sys.modules]; "
            "print(bad); raise SystemExit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_state_survives_serialisation(engine):
    state = engine.run(["1", "98", "7", "2", "98", "14"])
    assert State.from_dict(state.to_dict()) == state


keys = st.sampled_from(["1", "2", "3", "4", "5", "9", "0", "00", "98", "14", "17", "x", ""])


@settings(max_examples=300, deadline=None)
@given(inputs=st.lists(keys, max_size=25), split=st.integers(min_value=0, max_value=25))
def test_resuming_equals_replaying(engine, inputs, split):
    """The property the gateway relies on after losing Redis: state from a cached prefix plus
    the rest equals the state replayed from nothing."""
    split = min(split, len(inputs))
    resumed = State.from_dict(engine.run(inputs[:split]).to_dict())
    assert engine.run(inputs[split:], resumed) == engine.run(inputs)


@settings(max_examples=300, deadline=None)
@given(inputs=st.lists(st.text(max_size=6), max_size=30))
def test_every_reachable_screen_fits(engine, inputs):
    state = engine.run(inputs)
    reply = engine.reply(state, {"ref": "K7Q2MX"})
    assert len(reply.text) <= engine.flow.limit


def test_exit_from_every_screen_saves_nothing(engine):
    for name in engine.flow.screens:
        state = State(screen=name, answers={"category": "job_fraud"}, history=(("main", 0),))
        if engine.is_end(state):
            continue
        after = engine.step(state, "00")
        assert after.screen == "exit" and after.answers == {}
        assert engine.reply(after).effect is None and engine.reply(after).end


def test_an_ended_session_ignores_further_input(engine):
    done = engine.run(["1", "1", "1", "2", "2", "2", "1"])
    assert done.screen == "submitted"
    assert engine.run(["1", "00", "0"], done) == done


def test_wrong_key_keeps_screen_and_answers(engine):
    state = engine.run(["1", "1"])
    again = engine.step(state, "7")
    assert again.screen == state.screen and again.invalid and again.answers == state.answers
    assert engine.step(again, "1").screen == "region"


def test_back_from_second_page_returns_to_first(engine):
    first = engine.run(["1", "1", "1"])
    second = engine.step(first, "98")
    assert (second.screen, second.page) == ("region", 1)
    assert engine.step(second, "0") == first


def test_more_on_last_page_is_a_wrong_key(engine):
    last = engine.run(["1", "1", "1", "98"])
    assert engine.step(last, "98").invalid


def test_back_on_home_stays_home(engine):
    home = engine.start()
    assert engine.step(home, "0") == home


def test_language_is_kept_for_the_whole_session(engine):
    state = engine.run(["4", "2", "1", "1"])
    assert state.lang == "en" and "Who is the victim?" in engine.reply(state).text


def test_only_the_keys_on_the_page_shown_are_accepted(engine):
    """A key from a page the caller has not seen is refused like any wrong key, never recorded;
    once its page is shown it is accepted."""
    first = engine.run(["1"])
    hidden = [key for key in engine.options("category", "id") if key not in engine.shown(first)]
    assert hidden
    refused = engine.step(first, hidden[0])
    assert refused.invalid and refused.screen == "category" and "category" not in refused.answers
    region = engine.run(["1", "1", "1"])
    assert engine.step(region, "17").invalid
    assert engine.run(["98", "17"], region).answers["region"] == "16.74"


def test_home_is_99_and_forgets_the_answers(engine):
    cancelled = engine.run(["1", "1", "1", "2", "2", "2", "2"])
    assert cancelled.screen == "cancelled" and cancelled.answers
    assert engine.step(cancelled, "0").screen == "confirm"
    home = engine.step(cancelled, "99")
    assert home.screen == "main" and home.answers == {} and home.history == ()
    assert engine.step(engine.run(["2"]), "99").invalid  # a list never reaches 99
