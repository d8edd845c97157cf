"""The intake over the labelled corpus (corpus.yaml, sources in SOURCES.md): the targets a
reader of real messages must meet, and the confusion table docs/intake.md shows.

Each case runs through the real reader, with the question it answers when it is an answer,
as the SMS desk would. Run with `-s` to see the table."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from flows.intake import Intent
from gateway.content import load_content
from gateway.intake.sms_desk import INFORMATION_COMMANDS, says_more

HERE = Path(__file__).resolve().parent
CORPUS = yaml.safe_load((HERE / "corpus.yaml").read_text(encoding="utf-8"))
CONTENT = load_content()
READER = CONTENT.reader
KEYWORDS = CONTENT.keyword_table
FILES_REPORT = {"distress", "report"}
NOT_ALERTED = {"question", "chatter"}


def outcome(case: dict) -> dict:
    """What the service does with the message: its intent, place, category, urgency."""
    from flows.sms import parse

    text = case["text"]
    if case["intent"] == "answer":
        pending = case["pending"]
        reading = READER.read(text, whole_answer=len(READER.folder.spelled(text)) <= 5)
        return {"intent": "answer", "region": reading.region, "category": reading.category, "urgent": reading.urgent,
                "pending": pending}
    parsed = parse(text, KEYWORDS)
    reading = READER.read(text)
    if parsed.command and parsed.command not in ("info", "ack", "close", "signs", "rights", "join", "report", "watch"):
        return {"intent": "command", "command": parsed.command, "region": None, "category": None, "urgent": False}
    if parsed.command in ("report", "watch") and not reading.intent.files_report:
        intent = "report" if parsed.words else "command"
        rest = READER.read(parsed.rest)
        return {"intent": intent, "command": parsed.command, "region": rest.region, "category": rest.category,
                "urgent": rest.urgent}
    if parsed.command in INFORMATION_COMMANDS and not says_more(reading):
        place = READER.place(parsed.rest)
        return {"intent": "question" if parsed.command == "info" else "command", "command": parsed.command,
                "region": place.place.region if place else None, "category": None, "urgent": False}
    intent = reading.intent.value if reading.intent is not Intent.UNKNOWN else "chatter"
    return {"intent": intent, "region": reading.region, "category": reading.category, "urgent": reading.urgent}


RESULTS = [(case, outcome(case)) for case in CORPUS]


def _share(hits: int, total: int) -> float:
    return hits / total if total else 1.0


def confusion_table() -> str:
    labels = ["distress", "report", "question", "chatter", "command", "answer"]
    counts = Counter((case["intent"], got["intent"]) for case, got in RESULTS)
    lines = ["| labelled \\ read as | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for want in labels:
        lines.append(f"| {want} | " + " | ".join(str(counts[(want, got)]) for got in labels) + " |")
    return "\n".join(lines)


def test_the_corpus_is_large_and_labelled():
    intents = Counter(case["intent"] for case in CORPUS)
    assert len(CORPUS) >= 300
    assert intents["distress"] >= 50 and intents["report"] >= 80 and intents["chatter"] >= 30
    codes = {r.code for r in CONTENT.directory.regions}
    assert all(case.get("region") in codes | {None} for case in CORPUS)


def test_every_cry_for_help_is_alerted():
    distress = [(c, g) for c, g in RESULTS if c["intent"] == "distress"]
    missed = [c["text"] for c, g in distress if g["intent"] not in FILES_REPORT]
    assert not missed, missed
    urgent = sum(g["urgent"] for c, g in distress)
    assert _share(urgent, len(distress)) >= 0.95  # the rest are filed as reports: alerted, at most after a question


def test_report_recall_is_at_least_95_percent():
    reports = [(c, g) for c, g in RESULTS if c["intent"] == "report"]
    missed = [c["text"] for c, g in reports if g["intent"] not in FILES_REPORT]
    assert _share(len(reports) - len(missed), len(reports)) >= 0.95, missed


def test_the_place_is_right_where_the_text_names_one():
    placed = [(c, g) for c, g in RESULTS if c.get("region") and c["intent"] != "command"]
    wrong = [(c["text"], c["region"], g["region"]) for c, g in placed if g["region"] != c["region"]]
    assert _share(len(placed) - len(wrong), len(placed)) >= 0.95, wrong


def test_no_place_is_invented():
    unplaced = [(c, g) for c, g in RESULTS if "region" in c and c["region"] is None]
    invented = [(c["text"], g["region"]) for c, g in unplaced if g["region"]]
    assert _share(len(unplaced) - len(invented), len(unplaced)) >= 0.95, invented


def test_chatter_and_questions_raise_no_alert():
    quiet = [(c, g) for c, g in RESULTS if c["intent"] in NOT_ALERTED]
    alerted = [c["text"] for c, g in quiet if g["intent"] in FILES_REPORT]
    assert _share(len(alerted), len(quiet)) <= 0.01, alerted


def test_answers_give_what_was_asked():
    answers = [(c, g) for c, g in RESULTS if c["intent"] == "answer" and c["pending"] == "region"]
    wrong = [(c["text"], c.get("region"), g["region"]) for c, g in answers if g["region"] != c.get("region")]
    assert _share(len(answers) - len(wrong), len(answers)) >= 0.9, wrong


@pytest.mark.parametrize("intent", ["distress", "report"])
def test_category_is_right_where_labelled(intent):
    labelled = [(c, g) for c, g in RESULTS if c["intent"] == intent and c.get("category")]
    right = sum(g["category"] == c["category"] for c, g in labelled)
    assert _share(right, len(labelled)) >= 0.5  # a floor, not a target: a wrong modus still reaches an agency


def test_every_distress_message_has_a_place_or_is_asked_for_one():
    """A cry for help without a place is still alerted (province level) and asks where."""
    unplaced = [c for c, g in RESULTS if c["intent"] == "distress" and g["intent"] == "distress" and not g["region"]]
    assert all(not c.get("region") for c in unplaced)


def test_print_the_confusion_table(capsys):
    table = confusion_table()
    with capsys.disabled():
        print("\n" + table)
    assert table.count("\n") == 7
