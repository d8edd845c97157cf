"""A feature phone and a responder's phone in a terminal (`flask --app gateway simulate`).

Nobody here has a short code or a phone on an Indonesian network, so this talks HTTP to a
running stack exactly as Africa's Talking does (form POSTs to /at/ussd with every input so
far joined by `*`, and to /at/sms), and watches outgoing SMS where the local sink records
them (VAR_DIR/sms-sink.log, numbers masked). `--script` replays a conversation and checks
every screen and SMS against what the script expects: a smoke test after deployment.
`--channel whatsapp` is the same phone on WhatsApp: signed JSON as Meta sends it, the menu's
screens read from the sink (WhatsApp without WHATSAPP_PHONE_NUMBER_ID sends there too)."""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import click
import requests
import yaml
from flask import current_app
from flask.cli import with_appcontext

from gateway.cases import roster
from gateway.channels.whatsapp import signature
from gateway.phones import mask_numbers

USSD_LIMIT = 182              # characters of one answer, `CON `/`END ` included
REPLY_TIMEOUT_SECONDS = 60    # a handset closes a screen left unanswered this long
SMS_WAIT_SECONDS = 30         # how long a script waits for an expected SMS
HTTP_TIMEOUT_SECONDS = 15     # the aggregator gives up on an answer after about 10 s
PHONE, SERVICE_CODE, SHORT_CODE = "+6281298765432", "*123#", "12345"
CHECKS = ("expect", "expect_regex", "save", "from")

Post = Callable[[str, dict], tuple[int, str]]  # (path, form) -> (status, body)


HELP = """Commands: dial | <keys> (answer the open screen) | timeout (leave it unanswered 60 s) |
sms TEXT (from this phone) | responder TEXT (from the duty number last alerted, e.g. responder TERIMA K7Q2MX) |
wait [SECONDS] (watch for SMS) | quit"""
WHATSAPP_HELP = """Commands: MENU (open the menu) | anything else is a message from this phone: a key
(1, 0 back, 00 end) or words (what happened and where, INFO OKI, STOP) | responder TEXT (an SMS from
the duty number last alerted, e.g. responder TERIMA K7Q2MX) | wait [SECONDS] (watch for messages) | quit"""


class SimulatorError(click.ClickException):
    """The stack answered in a way no phone would accept, or a script cannot be run."""


def http_post(base_url: str, token: Optional[str]) -> Post:
    def post(path: str, form: dict) -> tuple[int, str]:
        try:
            response = requests.post(f"{base_url.rstrip('/')}{path}", data=form, timeout=HTTP_TIMEOUT_SECONDS,
                                     params={"token": token} if token else None)
        except requests.RequestException as exc:
            raise SimulatorError(f"{base_url} does not answer ({type(exc).__name__}): is `make run` running?") from None
        return response.status_code, response.text
    return post


@dataclass(frozen=True)
class Screen:
    raw: str

    @property
    def end(self) -> bool:
        return self.raw.startswith("END ")

    @property
    def text(self) -> str:
        return self.raw[4:]


class Aggregator:
    """What Africa's Talking sends on behalf of one phone number."""

    times_out = True  # a handset closes a screen left unanswered
    help = HELP

    def __init__(self, post: Post, phone: str = PHONE, service_code: str = SERVICE_CODE,
                 first_session: Optional[str] = None):
        self.post, self.phone, self.service_code = post, phone, service_code
        self.session_id, self.inputs = None, []
        self.first_session = first_session  # a fixed id makes replaying a report file nothing new

    def banner(self) -> str:
        return f"Phone {self.phone}, service code {self.service_code}. {self.help}"

    def show(self, screen: Screen) -> str:
        return show(screen)

    def dial(self) -> Screen:
        session_id, self.first_session = self.first_session or f"ATUid_{uuid.uuid4().hex}", None
        self.session_id, self.inputs = session_id, []
        return self._hop()

    def press(self, key: str) -> Screen:
        if self.session_id is None:
            raise SimulatorError("no USSD session open: dial first")
        self.inputs.append(key)
        return self._hop()

    def _hop(self) -> Screen:
        status, body = self.post("/at/ussd", {"sessionId": self.session_id, "serviceCode": self.service_code,
                                              "phoneNumber": self.phone, "networkCode": "99999",
                                              "text": "*".join(self.inputs)})
        if status != 200 or not body.startswith(("CON ", "END ")):
            raise SimulatorError(f"/at/ussd answered {status} {body[:80]!r}: a phone would drop this session")
        screen = Screen(body)
        if screen.end:
            self.session_id = None
        return screen

    def time_out(self) -> None:
        """The caller did not answer in time: the session ends as the aggregator reports it,
        and the next key pressed belongs to no session (the phone must dial again)."""
        if self.session_id is None:
            raise SimulatorError("no USSD session open: nothing to time out")
        status, body = self.post("/at/ussd/events", {"sessionId": self.session_id, "phoneNumber": self.phone,
                                                     "status": "Incomplete", "input": "*".join(self.inputs),
                                                     "serviceCode": self.service_code})
        self.session_id = None
        if status != 200:
            raise SimulatorError(f"/at/ussd/events answered {status} {body[:80]!r}")

    def sms(self, text: str, sender: Optional[str] = None) -> None:
        status, body = self.post("/at/sms", {"from": sender or self.phone, "to": SHORT_CODE, "text": text,
                                             "id": f"SIM_{uuid.uuid4().hex}", "networkCode": "99999",
                                             "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")})
        if status != 200:
            raise SimulatorError(f"/at/sms answered {status} {body[:80]!r}")


class WhatsAppPhone(Aggregator):
    """What Meta sends on behalf of one WhatsApp user: signed JSON to /wa/webhook. Answers come
    as messages, not in the response, so each key pressed waits for the next WhatsApp message
    to this phone in the sink; what else arrives meanwhile (an alert) stays in the sink to be
    shown; a responder's SMS still goes to /at/sms. `dial` sends MENU."""

    times_out = False  # a chat has no screen to time out

    def __init__(self, post: Post, post_json: Callable[[str, bytes, dict], tuple[int, str]], app_secret: str,
                 sink: "Sink", phone: str = PHONE, wait: float = SMS_WAIT_SECONDS):
        super().__init__(post, phone)
        self.post_json, self.app_secret, self.sink, self.wait = post_json, app_secret, sink, wait
        self.session_id = "whatsapp"  # a chat is always open: every line is a message

    help = WHATSAPP_HELP

    def banner(self) -> str:
        return f"Phone {self.phone} on WhatsApp. {self.help}"

    def show(self, screen: Screen) -> str:
        rule = "-" * 30
        return f"{rule}\n{screen.text}\n{rule} WhatsApp"

    def dial(self) -> Screen:
        return self.press("MENU")

    def press(self, key: str) -> Screen:
        self.message(key)
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            seen = self.sink.new()
            answer = next((m for m in seen if m["mine"] and m["channel"] == "whatsapp"), None)
            self.sink.keep([m for m in seen if m is not answer])
            if answer is not None:
                return Screen(f"CON {answer['body']}")
            time.sleep(0.1)
        raise SimulatorError(f"no WhatsApp answer within {self.wait:g}s")

    def time_out(self) -> None:
        """A chat has no screen to time out: the menu closes itself after a quiet while."""

    def message(self, text: str) -> None:
        value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "simulator"},
                 "messages": [{"from": self.phone.lstrip("+"), "id": f"wamid.SIM{uuid.uuid4().hex}",
                               "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}]}
        raw = json.dumps({"object": "whatsapp_business_account",
                          "entry": [{"id": "simulator", "changes": [{"field": "messages", "value": value}]}]}).encode()
        status, body = self.post_json("/wa/webhook", raw, {"X-Hub-Signature-256": signature(raw, self.app_secret)})
        if status != 200:
            raise SimulatorError(f"/wa/webhook answered {status} {body[:80]!r}: is WHATSAPP_APP_SECRET the stack's?")

    def sms(self, text: str, sender: Optional[str] = None) -> None:
        if sender is None:
            self.message(text)
        else:
            super().sms(text, sender)


def http_post_json(base_url: str) -> Callable[[str, bytes, dict], tuple[int, str]]:
    def post(path: str, raw: bytes, headers: dict) -> tuple[int, str]:
        try:
            response = requests.post(f"{base_url.rstrip('/')}{path}", data=raw, timeout=HTTP_TIMEOUT_SECONDS,
                                     headers={"Content-Type": "application/json", **headers})
        except requests.RequestException as exc:
            raise SimulatorError(f"{base_url} does not answer ({type(exc).__name__}): is `make run` running?") from None
        return response.status_code, response.text
    return post


class Sink:
    """SMS (and WhatsApp messages) the stack sent, read from the sink log; only lines written
    after we started. Each has `channel`: sms, or whatsapp (a line without one is an SMS)."""

    def __init__(self, path: Path, phone: str):
        self.path, self.masked_phone = path, mask_numbers(phone)
        self.offset = path.stat().st_size if path.exists() else 0
        self.last_alert_to: Optional[str] = None
        self.kept: list[dict] = []

    def keep(self, messages: list[dict]) -> None:
        """Messages read but not for the reader: the next `new` returns them first."""
        self.kept += messages

    def new(self) -> list[dict]:
        kept, self.kept = self.kept, []
        if not self.path.exists():
            return kept
        with open(self.path, encoding="utf-8") as fh:
            fh.seek(self.offset)
            lines = fh.readlines()
        complete = [line for line in lines if line.endswith("\n")]  # a line being written waits
        self.offset += sum(len(line.encode("utf-8")) for line in complete)
        messages = [json.loads(line) for line in complete if line.strip()]
        for m in messages:
            m["mine"] = m["to"] == self.masked_phone
            m.setdefault("channel", "sms")
            if not m["mine"]:
                self.last_alert_to = m["to"]
        return kept + messages


def describe(message: dict) -> str:
    by = "WhatsApp" if message.get("channel") == "whatsapp" else "SMS"
    if message["mine"]:
        return f"[{by} to you] {message['body']}"
    return f"[alert to {message['to']}{'' if by == 'SMS' else ' on ' + by}] {message['body']}"


def show(screen: Screen) -> str:
    flag = "  OVER THE LIMIT" if len(screen.raw) > USSD_LIMIT else ""
    rule = "-" * 30
    return f"{rule}\n{screen.text}\n{rule} {len(screen.raw)}/{USSD_LIMIT} {screen.raw[:3]}{flag}"


class Responders:
    """Masked numbers in the sink back to full ones, from the roster (local stacks only)."""

    def __init__(self, lookup: Callable[[], list[str]]):
        self.lookup = lookup

    def number(self, masked: Optional[str]) -> str:
        if masked is None:
            raise SimulatorError("no alert seen yet, so no responder to answer as")
        found = [n for n in self.lookup() if mask_numbers(n) == masked]
        if len(found) != 1:
            raise SimulatorError(f"cannot tell which duty number {masked} is; give `from:` in the script")
        return found[0]


def _fill(text: str, saved: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: saved.get(m[1], m[0]), str(text))


class Script:
    """A scripted conversation: each step one action, with optional checks on its result."""

    def __init__(self, path: Path, aggregator: Aggregator, sink: Sink, responders: Responders,
                 echo: Callable[[str], None] = click.echo, sms_wait: float = SMS_WAIT_SECONDS):
        try:
            self.spec = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SimulatorError(f"{path}: not YAML: {exc}") from None
        if not isinstance(self.spec, dict) or not isinstance(self.spec.get("steps"), list) \
                or not all(isinstance(step, dict) for step in self.spec["steps"]):
            raise SimulatorError(f"{path}: expected `name:` and a list of `steps:`, each a mapping "
                                 "(see docs/examples/)")
        self.aggregator, self.sink, self.responders, self.echo = aggregator, sink, responders, echo
        self.sms_wait, self.saved, self.failures, self.step = sms_wait, {}, [], 0
        self.pending: list[dict] = []
        for n, step in enumerate(self.spec["steps"], 1):
            actions = [k for k in step if k in ACTIONS]
            unknown = [k for k in step if k not in (*ACTIONS, *CHECKS)]
            if len(actions) != 1 or unknown:
                raise SimulatorError(f"{path}: step {n}: needs exactly one of {', '.join(ACTIONS)}"
                                     + (f"; unknown {', '.join(unknown)}" if unknown else ""))

    def run(self) -> list[str]:
        """Every step runs, whatever failed before it, so one run names every mismatch: each is
        printed where it happens (`!! MISMATCH`) and again in the summary at the end."""
        self.echo(f"== {self.spec.get('name', 'script')}")
        for n, step in enumerate(self.spec["steps"], 1):
            self.step = n
            action = next(k for k in step if k in ACTIONS)
            try:
                result = ACTIONS[action](self, _fill(step[action], self.saved), step)
            except SimulatorError as exc:
                raise SimulatorError(f"step {n} ({action}): {exc.message}") from None
            if result is not None:
                self._check(n, step, result)
        self.echo(f"== {'FAILED' if self.failures else 'passed'}: {len(self.failures)} mismatches")
        for failure in self.failures:
            self.echo(f"   {failure}")
        return self.failures

    def _fail(self, message: str) -> None:
        self.failures.append(message)
        self.echo(f"!! MISMATCH {message}")

    def _dial(self, value, step) -> str:
        if value not in ("True", "true", ""):
            self.aggregator.service_code = value
        return self._screen(self.aggregator.dial())

    def _press(self, value, step) -> str:
        return self._screen(self.aggregator.press(value))

    def _timeout(self, value, step) -> None:
        """The caller leaves the open screen unanswered: after 60 s the handset gives up."""
        self.echo(f"(no answer for {REPLY_TIMEOUT_SECONDS}s: the phone closed the session)")
        self.aggregator.time_out()

    def _screen(self, screen: Screen) -> str:
        self.echo(self.aggregator.show(screen))
        if len(screen.raw) > USSD_LIMIT:
            self._fail(f"step {self.step}: screen is {len(screen.raw)} characters, over {USSD_LIMIT}: "
                       f"{screen.text[:40]!r}")
        return screen.text

    def _sms(self, value, step) -> None:
        self.echo(f"> SMS from you: {value}")
        self.aggregator.sms(value)

    def _responder_sms(self, value, step) -> None:
        sender = _fill(step["from"], self.saved) if "from" in step else self.responders.number(self.sink.last_alert_to)
        self.echo(f"> SMS from {mask_numbers(sender)}: {value}")
        self.aggregator.sms(value, sender)

    def _expect_sms(self, value, step) -> str:
        return self._wait(lambda m: m["mine"], value, step, "SMS to you")

    def _expect_alert(self, value, step) -> str:
        return self._wait(lambda m: not m["mine"], value, step, "alert to a responder")

    def _wait(self, kind, value, step, what) -> str:
        """The first SMS of that kind matching the step; others seen meanwhile stay pending."""
        if not self.sink.path.parent.exists():
            raise SimulatorError(f"no SMS sink at {self.sink.path}: SMS checks need a local stack sending to the sink")
        deadline = time.monotonic() + self.sms_wait
        while True:
            for m in self.sink.new():
                self.echo(describe(m))
                self.pending.append(m)
            for m in self.pending:
                if kind(m) and value in m["body"] and _matches(step, m["body"], self.saved):
                    self.pending.remove(m)
                    return m["body"]
            if time.monotonic() > deadline:
                self._fail(f"step {self.step}: no {what} containing {value!r} within {self.sms_wait:g}s")
                return None
            time.sleep(0.2)

    def _check(self, n: int, step: dict, text: str) -> None:
        if "expect" in step and _fill(step["expect"], self.saved) not in text:
            self._fail(f"step {n}: expected {step['expect']!r} in {text!r}")
        elif "expect_regex" in step and not _matches(step, text, self.saved):
            self._fail(f"step {n}: expected /{step['expect_regex']}/ in {text!r}")
        for name, pattern in (step.get("save") or {}).items():
            found = re.search(pattern, text)
            if found is None:
                self._fail(f"step {n}: nothing to save as {name}: /{pattern}/ not in {text!r}")
            else:
                self.saved[name] = found.group(1) if found.groups() else found.group(0)


def _matches(step: dict, text: str, saved: dict) -> bool:
    return "expect_regex" not in step or re.search(_fill(step["expect_regex"], saved), text) is not None


def interactive(aggregator: Aggregator, sink: Sink, responders: Responders, read: Callable[[], str] = input,
                echo: Callable[[str], None] = click.echo, clock: Callable[[], float] = time.monotonic) -> None:
    echo(aggregator.banner())
    shown_at = None
    while True:
        try:
            line = read().strip()
        except EOFError:
            return
        if aggregator.times_out and aggregator.session_id and shown_at is not None \
                and clock() - shown_at > REPLY_TIMEOUT_SECONDS:
            echo(f"(no answer for {REPLY_TIMEOUT_SECONDS}s: the phone closed the session)")
            aggregator.time_out()
        command, _, rest = line.partition(" ")
        try:
            if line in ("quit", "exit"):
                return
            if command == "dial":
                echo(aggregator.show(aggregator.dial()))
                shown_at = clock()
            elif command == "timeout" and aggregator.times_out:
                echo(f"(no answer for {REPLY_TIMEOUT_SECONDS}s: the phone closed the session)")
                aggregator.time_out()
            elif aggregator.session_id and line and command not in ("sms", "responder", "wait"):
                echo(aggregator.show(aggregator.press(line)))
                shown_at = clock()
            elif command == "sms" and rest:
                aggregator.sms(rest)
            elif command == "responder" and rest:
                aggregator.sms(rest, responders.number(sink.last_alert_to))
            elif command == "wait":
                deadline = time.monotonic() + float(rest or 5)
                while time.monotonic() < deadline:  # SMS shown as they arrive
                    for m in sink.new():
                        echo(describe(m))
                    time.sleep(0.2)
            elif re.fullmatch(r"[0-9*#]+", line):
                echo("(no screen open: `dial` first)")
            elif line:
                echo(aggregator.help)
        except (SimulatorError, ValueError) as exc:
            echo(f"error: {exc}")
        for m in sink.new():
            echo(describe(m))


@click.command("simulate")
@click.option("--url", default=None, help="The running stack; default http://$HOST:$PORT (127.0.0.1:8000).")
@click.option("--phone", default=PHONE, show_default=True, help="The simulated caller's number.")
@click.option("--script", "script_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replay this conversation and check the screens; exit 1 on any mismatch.")
@click.option("--session", default=None, help="Session id of the first dial (default: a new one). "
              "The gateway files one report per session, so a replay with the same id files nothing new.")
@click.option("--channel", type=click.Choice(["ussd", "whatsapp"]), default="ussd", show_default=True,
              help="whatsapp: the phone writes on WhatsApp (signed with WHATSAPP_APP_SECRET); `dial` sends MENU.")
@with_appcontext
def simulate(url: Optional[str], phone: str, script_path: Optional[Path], session: Optional[str],
             channel: str) -> None:
    """A phone in the terminal, talking HTTP to a running stack as the aggregator does."""
    runtime = current_app.extensions["gateway"].runtime
    settings = runtime.settings
    url = url or f"http://{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '8000'}"
    sink = Sink(settings.var_dir / "sms-sink.log", phone)
    if channel == "whatsapp":
        if not settings.whatsapp_app_secret:
            raise SimulatorError("--channel whatsapp signs as Meta does: set WHATSAPP_APP_SECRET as the stack has it")
        aggregator = WhatsAppPhone(http_post(url, settings.webhook_token), http_post_json(url),
                                   settings.whatsapp_app_secret, sink, phone)
    else:
        aggregator = Aggregator(http_post(url, settings.webhook_token), phone, first_session=session)
    responders = Responders(lambda: [r.phone for r in roster.listing(runtime)])
    if script_path is None:
        interactive(aggregator, sink, responders)
        return
    if Script(script_path, aggregator, sink, responders).run():
        raise SystemExit(1)


# A script step's action -> the method that plays it.
ACTIONS = {"dial": Script._dial, "press": Script._press, "timeout": Script._timeout, "sms": Script._sms,
           "responder_sms": Script._responder_sms, "expect_sms": Script._expect_sms,
           "expect_alert": Script._expect_alert}

