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
    """`7` on the first page of "what happened" was never seen by the caller: refused, not
    recorded; once its page is shown it is accepted. Likewise a kabupaten/kota on page 2."""
    first = engine.run(["1"])
    assert "7 " not in engine.reply(first).text
    refused = engine.step(first, "7")
    assert refused.invalid and refused.screen == "category" and "category" not in refused.answers
    shown = engine.run(["98", "7"], first)
    assert shown.screen == "victim" and shown.answers["category"] == "forced_labour"
    region = engine.run(["2"], shown)
    assert engine.step(region, "17").invalid
    assert engine.run(["98", "17"], region).answers["region"] == "16.74"  # Prabumulih, last alphabetically


def test_the_mother_and_child_sub_list_answers_the_same_question(engine):
    sub = engine.run(["1", "5"])
    assert sub.screen == "category_family" and "category" not in sub.answers
    answered = engine.run(["3", "3"], sub)
    assert answered.screen == "region"
    assert answered.answers == {"category": "baby_selling", "victim": "mother_baby"}
    assert engine.step(answered, "0").screen == "victim"


def test_98_turns_a_text_page_as_it_turns_a_list_page(engine):
    page = engine.run(["3"])
    assert page.screen == "signs_1" and "98 Lanjut" in engine.reply(page).text
    assert engine.step(page, "1").invalid  # no longer "1 Lanjut"
    assert engine.run(["98", "98", "98"], page).screen == "signs_4"
    assert engine.step(engine.run(["98", "98", "98"], page), "98").invalid  # the last page has no next


def test_home_is_99_and_forgets_the_answers(engine):
    cancelled = engine.run(["1", "1", "1", "2", "2", "2", "2"])
    assert cancelled.screen == "cancelled" and cancelled.answers
    assert "dibatalkan" in engine.reply(cancelled).text
    assert engine.step(cancelled, "0").screen == "confirm"
    home = engine.step(cancelled, "99")
    assert home.screen == "main" and home.answers == {} and home.history == ()
    assert engine.step(engine.run(["2"]), "99").invalid  # a list never reaches 99


def test_subscribing_is_asked_before_it_is_done(engine):
    asked = engine.run(["6", "6"])
    assert asked.screen == "subscribe_confirm" and "HP ini" in engine.reply(asked).text
    assert engine.step(asked, "1").screen == "subscribed"
    assert engine.step(asked, "2").screen == "subscribe_declined"
    assert engine.reply(engine.step(asked, "2")).effect is None


def test_regions_are_listed_alphabetically_as_shown(engine):
    names = [c.label for c in engine.options("region", "id").values()]
    assert names == sorted(names, key=str.lower) and names[0] == "Banyuasin"
