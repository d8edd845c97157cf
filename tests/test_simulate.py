"""The phone simulator: scripts and the interactive phone against the app in-process (fast),
and every documented example script through `flask --app gateway simulate --script` against a
real `make run` stack (slow), as a deployment smoke test would run it."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ENV_NAMES, ROOT
from stack import Stack

from gateway.cli import simulator
from gateway.phones import mask_numbers

EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.yaml"))
DESK = "+6281277776666"
TOKEN = "smoke-test-token-0123456789"  # the stack runs as a deployment would: every callback needs it


def client_post(client):
    def post(path, form):
        response = client.post(path, data=form)
        return response.status_code, response.get_data(as_text=True)
    return post


@pytest.fixture
def sink(settings_overrides):
    """Where the app under test would write its sink; the app may have made the directory already."""
    settings_overrides["var_dir"].mkdir(parents=True, exist_ok=True)
    return simulator.Sink(settings_overrides["var_dir"] / "sms-sink.log", simulator.PHONE)


def script(tmp_path, client, sink, text: str) -> simulator.Script:
    path = tmp_path / "script.yaml"
    path.write_text(text)
    return simulator.Script(path, simulator.Aggregator(client_post(client)), sink,
                            simulator.Responders(lambda: [DESK]), echo=lambda line: None, sms_wait=0.5)


def test_the_helplines_example_passes_in_process(tmp_path, client, sink):
    text = (ROOT / "docs" / "examples" / "ussd_helplines.yaml").read_text()
    assert script(tmp_path, client, sink, text).run() == []


def test_mismatches_are_named_and_the_rest_still_runs(tmp_path, client, sink):
    failures = script(tmp_path, client, sink, """
steps:
  - dial: true
    expect: "Selamat pagi"
  - press: "2"
    expect_regex: '^\\d+ OKU$'
  - press: "2"
    save: {ref: 'Kode: (\\w{6})'}
  - expect_sms: "Kode"
""").run()
    assert failures[0].startswith("step 1: expected 'Selamat pagi' in 'Aduan perdagangan orang")
    assert failures[1].startswith("step 2: expected /^\\d+ OKU$/ in")
    assert failures[2].startswith("step 3: nothing to save as ref")
    assert failures[3] == "step 4: no SMS to you containing 'Kode' within 0.5s"


def test_a_screen_over_182_characters_fails_the_script(tmp_path, sink):
    path = tmp_path / "long.yaml"
    path.write_text("steps:\n  - dial: true\n")
    aggregator = simulator.Aggregator(lambda path, form: (200, "CON " + "x" * 179))
    failures = simulator.Script(path, aggregator, sink, None, echo=lambda line: None).run()
    assert failures == ["step 1: screen is 183 characters, over 182: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"]


def test_a_step_must_say_what_it_does(tmp_path, client, sink):
    with pytest.raises(simulator.SimulatorError, match="step 2: needs exactly one of dial, press"):
        script(tmp_path, client, sink, "steps:\n  - dial: true\n  - press: '1'\n    sms: STOP\n")


def test_script_mode_exits_1_and_prints_each_mismatch(runner, client, tmp_path, monkeypatch):
    monkeypatch.setattr(simulator, "http_post", lambda url, token: client_post(client))
    path = tmp_path / "bad.yaml"
    path.write_text("steps:\n  - dial: true\n    expect: Halo\n  - press: '2'\n    expect: Nomor bantuan\n")
    result = runner.invoke(args=["simulate", "--script", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    mismatch = "step 1: expected 'Halo' in 'Aduan perdagangan orang"
    assert any(line.startswith(f"!! MISMATCH {mismatch}") for line in lines)  # where it happened
    summary = lines[lines.index("== FAILED: 1 mismatches"):]
    assert len(summary) == 2 and summary[1].startswith(f"   {mismatch}")  # and again at the end


@pytest.mark.parametrize("text, message", [
    ("- dial: true\n", "expected `name:` and a list of `steps:`"),
    ("steps: [dial]\n", "expected `name:` and a list of `steps:`"),
    ("steps:\n  - dial: [\n", "not YAML"),
    ("steps:\n  - dial: true\n  - press: '00'\n  - press: '1'\n", "step 3 (press): no USSD session open: dial first"),
], ids=["a list", "a step not a mapping", "broken YAML", "press after the session ended"])
def test_a_script_that_cannot_run_is_said_plainly(runner, client, tmp_path, monkeypatch, text, message):
    monkeypatch.setattr(simulator, "http_post", lambda url, token: client_post(client))
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    result = runner.invoke(args=["simulate", "--script", str(path)])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_a_scripted_timeout_closes_the_session_and_the_caller_dials_again(tmp_path, client, sink):
    posted = []
    post = client_post(client)
    path = tmp_path / "timeout.yaml"
    path.write_text("""
steps:
  - dial: true
  - press: "2"
    expect: "Nomor bantuan: daerah mana?"
  - timeout: true
  - dial: true
    expect: "1 Lapor"
""")
    aggregator = simulator.Aggregator(lambda path, form: posted.append((path, form)) or post(path, form))
    out = []
    assert simulator.Script(path, aggregator, sink, None, echo=out.append).run() == []
    [(_, event)] = [(p, f) for p, f in posted if p == "/at/ussd/events"]
    assert event["status"] == "Incomplete" and event["input"] == "2"
    assert "(no answer for 60s: the phone closed the session)" in out
    first, second = {f["sessionId"] for p, f in posted if p == "/at/ussd"}, event["sessionId"]
    assert len(first) == 2 and second in first  # the second dial is a new session


def test_an_unreachable_stack_is_said_plainly(runner, tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text("steps:\n  - dial: true\n")
    result = runner.invoke(args=["simulate", "--url", "http://127.0.0.1:9", "--script", str(path)])
    assert result.exit_code == 1 and "does not answer" in result.output and "make run" in result.output


def test_sink_tells_the_callers_sms_from_alerts_and_waits_for_whole_lines(sink):
    lines = [{"to": mask_numbers(simulator.PHONE), "body": "Laporan diterima"},
             {"to": mask_numbers(DESK), "body": "TPPO K7Q2MX"}]
    sink.path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"to": "+62 81')
    assert [(m["mine"], m["body"]) for m in sink.new()] == [(True, "Laporan diterima"), (False, "TPPO K7Q2MX")]
    assert sink.new() == [] and sink.last_alert_to == mask_numbers(DESK)
    assert simulator.Responders(lambda: ["+6281234567890", DESK]).number(sink.last_alert_to) == DESK


def test_interactive_phone_answers_screens_and_times_out_like_a_handset(client, sink):
    posted = []
    post = client_post(client)
    aggregator = simulator.Aggregator(lambda path, form: posted.append(path) or post(path, form))
    lines, now, out = iter(["dial", "2", "2", "help", "quit"]), [0], []

    def read():  # one second per key, then a long pause before `help`
        line = next(lines)
        now[0] += 100 if line == "help" else 1
        return line

    simulator.interactive(aggregator, sink, simulator.Responders(list), read=read, echo=out.append,
                          clock=lambda: now[0])
    text = "\n".join(out)
    assert "Nomor bantuan: daerah mana?" in text and "Empat Lawang:\n" in text
    assert f"/{simulator.USSD_LIMIT} CON" in text
    assert "(no answer for 60s: the phone closed the session)" in text and "/at/ussd/events" in posted
    assert simulator.HELP in out[-1]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("stack"), {"WEBHOOK_TOKEN": TOKEN})
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_documented_example_passes_against_make_run(running, example: Path):
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(VAR_DIR=str(running.var_dir), REDIS_URL=f"redis://127.0.0.1:{running.redis_port}/0",
               WEBHOOK_TOKEN=TOKEN)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "gateway", "simulate", "--url", running.base_url,
                             "--script", str(example)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== passed: 0 mismatches" in result.stdout


@pytest.fixture
def stack_runtime(running):
    """The stack's own database and key, read as `flask simulate` reads them: the roster that
    turns a masked duty number in the sink back into the number a responder texts from."""
    from gateway.runtime import build_runtime
    from gateway.settings import Settings

    runtime = build_runtime(Settings.from_env({"VAR_DIR": str(running.var_dir),
                                               "REDIS_URL": f"redis://127.0.0.1:{running.redis_port}/0"}))
    yield runtime
    runtime.db.dispose()


@pytest.mark.slow
def test_interactive_phone_and_responder_against_make_run(running, stack_runtime):
    """Both ends of a report over real HTTP: the caller's screens (each within 182 characters),
    the alert arriving at the duty number, the responder's TERIMA and the caller's neutral SMS;
    then a screen left unanswered past 60 s, which closes the session as a handset does."""
    from gateway.cases import roster

    assert simulator.http_post(running.base_url, None)("/at/ussd", {"sessionId": "x"})[0] == 403  # token needed
    aggregator = simulator.Aggregator(simulator.http_post(running.base_url, TOKEN), phone="+6281298760001")
    sink = simulator.Sink(running.var_dir / "sms-sink.log", aggregator.phone)
    responders = simulator.Responders(lambda: [r.phone for r in roster.listing(stack_runtime)])
    out, now = [], [0.0]
    text = lambda: "\n".join(out)  # noqa: E731

    def session():
        yield "dial"
        # job fraud, a woman, OKI (on the second page of the list), no danger, contact me, send
        yield from ["1", "1", "1", "98", "10", "2", "1", "1"]
        ref = re.search(r"Kode: ([A-Z0-9]{6})", text()).group(1)
        while f"TPPO {ref}" not in text():
            yield "wait 1"
        yield f"responder TERIMA {ref}"
        while f"Kode {ref}: sudah diterima petugas" not in text():
            yield "wait 1"
        yield "dial"
        yield "2"
        now[0] += simulator.REPLY_TIMEOUT_SECONDS + 1  # the caller puts the phone down
        yield "5"

    lines = session()

    def read():
        now[0] += 1
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    simulator.interactive(aggregator, sink, responders, read=read, echo=out.append, clock=lambda: now[0])
    screens = [int(m.group(1)) for m in re.finditer(r"-{30} (\d+)/182 (?:CON|END)", text())]
    assert len(screens) == 11 and max(screens) <= simulator.USSD_LIMIT
    assert re.search(r"\[alert to \+62[^\]]*\] TPPO [A-Z0-9]{6}: Penipuan kerja", text())
    assert re.search(r"\[SMS to you\] Kode [A-Z0-9]{6}: sudah diterima petugas", text())
    assert "(no answer for 60s: the phone closed the session)" in text()
    assert aggregator.session_id is None and out[-1] == "(no screen open: `dial` first)"  # "5" reached no session


def test_the_readme_try_it_is_what_ci_runs():
    """A newcomer follows only the README: the scripts it names are the examples CI runs against
    `make run` above, and its table of script steps is every action the simulator knows."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Try it in five minutes")
    section = readme[start:readme.index("\n## ", start + 1)]
    assert section.index("make run") < section.index("flask --app gateway simulate --script")
    named = re.findall(r"simulate --script (docs/examples/\S+\.yaml)", section)
    named += [f"docs/examples/{name}" for name in re.findall(r"`(\w+\.yaml)`", section)]
    assert len(set(named)) == len(EXAMPLES) and {ROOT / n for n in named} == set(EXAMPLES)
    documented = set(re.findall(r"^\| `(\w+):", section, re.M)) | set(re.findall(r", `(\w+):", section))
    assert documented >= set(simulator.ACTIONS) and documented - set(simulator.ACTIONS) <= set(simulator.CHECKS)
