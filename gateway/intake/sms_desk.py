"""Answering an SMS: one incoming message in, at most one reply out, all in one transaction.

The worker claims the message (compare-and-set on `handled_at`), acts on its keyword and
writes the reply as a queued Message with its send job in the outbox, so a crash at any point
either redoes everything or nothing, and a message is never answered twice.

A message that is not a command is read for what it is (flows.intake): a cry for help is
filed at once as urgent and alerted even before its place is known (the province-level units
first; the local ones when the reporter names the place); a report in plain words is filed
like `LAPOR`; a question gets the help-line numbers; chatter at most one short kind reply.

A report (`LAPOR <what, where>`, or plain words) is filed at once when its text names a
place and a modus; otherwise it waits as `incomplete` and asks one short question at a time,
at most SMS_FOLLOW_UP_QUESTIONS, and a scheduled job files it as it is after
SMS_FOLLOW_UP_SECONDS: a report that stops half-way is still a report, never lost."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flows.intake import Intent, Reading
from flows.sms import Parsed, parse
from gateway.cases import community, dispatch
from gateway.cases.reports import ReportDesk, new_ref, session_key
from gateway.channels.base import CHAT_CHANNELS, chat_channel
from gateway.intake.chat_menu import ChatMenu
from gateway.intake.ussd import UssdService
from gateway.messaging import outbox
from gateway.messaging.sending import unit_of_work
from gateway.settings import HELP_REPLY_INTERVAL_SECONDS, SMS_FOLLOW_UP_QUESTIONS, SMS_FOLLOW_UP_SECONDS
from gateway.store.models import Contact, InboundMessage, Message, Report, Responder, Volunteer
from gateway.store.states import ReportStatus

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

# Commands that only give information yield to a cry for help or a clear report in their text:
# `TOLONG saya disekap di Kayuagung` is not a request for phone numbers.
INFORMATION_COMMANDS = frozenset({"info", "signs", "rights", "join"})
RESPONDER_COMMANDS = frozenset({"ack", "close"})  # from anyone else, `ok` and `terima kasih` are text
SHORT_ANSWER_WORDS = 5  # an answer this short to the place question is taken as a place name
LANGUAGE_WORDS = {"id": "id", "ind": "id", "indonesia": "id", "en": "en", "eng": "en", "english": "en",
                  "inggris": "en"}
# What STATUS tells the reporter: a report not yet with an agency is simply received.
STATUS_SHOWN = {ReportStatus.INCOMPLETE: "received", ReportStatus.RECEIVED: "received", ReportStatus.ROUTED: "routed",
                ReportStatus.UNASSIGNED: "received", ReportStatus.ACKNOWLEDGED: "acknowledged",
                ReportStatus.CLOSED: "closed"}


def says_more(reading: Reading) -> bool:
    """Whether an information command's text is a cry for help or a clear report."""
    return reading.intent is Intent.DISTRESS or (reading.intent is Intent.REPORT and reading.strong)


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Turn:
    """What handling one SMS does, built up while its transaction is open."""

    batch: outbox.Batch  # the jobs of the turn's transaction
    inbound: InboundMessage
    sender: str
    indexes: list[str]
    contact: Contact
    lang: str
    text: str = ""
    reading: Optional[Reading] = None  # the text read once, when a command's words were read already
    report_id: Optional[int] = None
    purpose: str = "reply"
    channel: Optional[str] = None  # a chat app the reply goes back on; None: SMS

    @property
    def session(self) -> Session:
        return self.batch.session

    def job(self, name: str, target_id: int, not_before: Optional[datetime] = None) -> None:
        self.batch.add(name, target_id, not_before)


class SmsDesk:
    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.content = runtime.content
        self.catalog = runtime.content.catalog

    def text(self, turn: Turn, key: str, **params) -> str:
        return self.catalog.text(turn.lang, key, **params)

    # -- the job ------------------------------------------------------------------------------

    @cached_property
    def menu(self) -> ChatMenu:
        return ChatMenu(self.rt, UssdService(self.rt, ReportDesk(self.rt)))

    def _read(self, inbound_id: int) -> Optional[InboundMessage]:
        """The message as stored, read before its transaction: what the menu and the desk read
        of it never changes once written."""
        with self.rt.db.session() as session:
            return session.get(InboundMessage, inbound_id)

    def _menu_turn(self, inbound: Optional[InboundMessage]) -> Optional[tuple[str, Optional[str]]]:
        """(outcome, reply) when a chat message belongs to the menu, else None. Run before the
        message's transaction: the menu files a report in a transaction of its own, which
        SQLite's one write lock would not give while the message's is open."""
        vault = self.rt.vault
        if inbound is None or inbound.handled_at is not None or inbound.channel not in CHAT_CHANNELS or inbound.kind:
            return None
        inbound_id = inbound.id
        with self.rt.db.session() as session:
            sender, text, channel = vault.decrypt(inbound.sender_enc), vault.decrypt(inbound.text_enc), inbound.channel
            indexes = vault.blind_indexes(sender)
            first = session.scalar(select(InboundMessage.id).where(
                InboundMessage.sender_index.in_(indexes), InboundMessage.channel == channel,
                InboundMessage.id < inbound_id).limit(1)) is None
        if parse(text, self.content.keyword_table).command == "stop":
            self.menu.close(channel, sender)
            return None
        start = self.menu.opens(text, first)
        if not start and not self.menu.is_open(channel, sender):
            return None
        if not start and not self.menu.is_key(text):  # words, not a key: the desk reads them
            self.menu.close(channel, sender)
            return None
        limit = self.rt.limits["sms"]
        if not self.rt.limiter.hit(limit, indexes[0]):
            told = self.rt.limiter.first_refusal(limit, indexes[0])
            return "limited", self.catalog.text("id", "sms.limited") if told else None
        reply = self.menu.answer(inbound_id, channel, sender, text, start)
        return None if reply is None else ("menu", reply)

    def handle(self, inbound_id: int) -> str:
        vault = self.rt.vault
        read = self._read(inbound_id)
        menu = self._menu_turn(read)
        with unit_of_work(self.rt) as batch:
            session = batch.session
            claimed = session.execute(update(InboundMessage).where(InboundMessage.id == inbound_id,
                                                                   InboundMessage.handled_at.is_(None))
                                      .values(handled_at=now())).rowcount
            outbox.mark_done(session, "handle_sms", inbound_id)
            if not claimed:
                return "already handled"
            # The copy read above, not read again; only its outcome is written.
            inbound = session.merge(read, load=False)
            sender = vault.decrypt(inbound.sender_enc)
            text = vault.decrypt(inbound.text_enc)
            parsed = parse(text, self.content.keyword_table)
            turn = self._turn(batch, inbound, sender, parsed)
            turn.text = text
            command = self._command(turn, parsed)
            if menu is not None:  # answered by the menu, its limits counted there
                command, reply = menu
            elif command != "stop" and self._over_limit(turn):  # a STOP is honoured whatever the count
                command = "limited"
                reply = self.text(turn, "sms.limited") if self._first_refusal(turn, "sms") else None
            elif inbound.kind:  # a photo, a location, a voice note: nothing the desk can read
                command, reply = "text_only", self._help(turn, "sms.text_only")
            else:
                reply = HANDLERS[command](self, turn, parsed)
            inbound.outcome = command if reply else f"{command}: no reply"
            if reply:
                self._queue_reply(turn, reply)
        return inbound.outcome

    def finish(self, report_id: int) -> str:
        """The scheduled end of an SMS report's follow-up window: file it as it is."""
        with unit_of_work(self.rt) as batch:
            session = batch.session
            outbox.mark_done(session, "finish_report", report_id)
            report = session.get(Report, report_id)
            if report is None or report.status != ReportStatus.INCOMPLETE:
                return "nothing to finish"
            sender = self.rt.vault.decrypt(report.reporter_phone_enc)
            contact = community.contact_for(session, self.rt.vault, sender)
            turn = Turn(batch, None, sender, [], contact, contact.lang or report.lang,
                        channel=chat_channel(report.channel))
            self._queue_reply(turn, self._file(turn, report))
        return "filed as it was"

    def _command(self, turn: Turn, parsed: Parsed) -> str:
        """The keyword's command, unless the text says more than the keyword: `answer` reads it."""
        command = parsed.command
        if command in RESPONDER_COMMANDS and self._responder(turn) is None:
            return "answer"
        if command in INFORMATION_COMMANDS and parsed.words:
            turn.reading = self.content.reader.read(turn.text)
            if says_more(turn.reading):
                return "answer"
        return command or "answer"

    def _turn(self, batch: outbox.Batch, inbound: InboundMessage, sender: str, parsed: Parsed) -> Turn:
        contact = community.contact_for(batch.session, self.rt.vault, sender)
        return Turn(batch, inbound, sender, self.rt.vault.blind_indexes(sender), contact,
                    contact.lang or parsed.lang or "id", channel=chat_channel(inbound.channel))

    def _over_limit(self, turn: Turn) -> bool:
        return not self.rt.limiter.hit(self.rt.limits["sms"], turn.indexes[0])

    def _first_refusal(self, turn: Turn, limit: str) -> bool:
        return self.rt.limiter.first_refusal(self.rt.limits[limit], turn.indexes[0])

    def _queue_reply(self, turn: Turn, body: str) -> None:
        dispatch.queue_sms(self.rt, turn.batch, turn.sender, body, turn.purpose, channel=turn.channel,
                           report_id=turn.report_id, inbound_id=turn.inbound.id if turn.inbound else None)

    # -- keywords --------------------------------------------------------------------------------

    def _stop(self, turn: Turn, parsed: Parsed) -> str:
        turn.contact.opted_out, turn.contact.opted_out_at = True, now()
        turn.purpose = "optout"  # the one SMS a STOP still gets: its confirmation
        return self.text(turn, "sms.stopped")

    def _start(self, turn: Turn, parsed: Parsed) -> str:
        turn.contact.opted_out, turn.contact.opted_out_at = False, None
        return self.text(turn, "sms.started")

    def _language(self, turn: Turn, parsed: Parsed) -> str:
        chosen = next((LANGUAGE_WORDS[w] for w in parsed.words if w in LANGUAGE_WORDS), None)
        if chosen is None:
            return self.text(turn, "sms.language_usage")
        turn.contact.lang = turn.lang = chosen
        return self.text(turn, "sms.language_set")

    def _info(self, turn: Turn, parsed: Parsed) -> str:
        return self._helplines(turn, self._place_code(parsed.rest))

    def _place_code(self, text: str) -> Optional[str]:
        mention = self.content.reader.place(text)
        return mention.place.region if mention else None

    def _helplines(self, turn: Turn, code: Optional[str]) -> str:
        if code is None:
            return self.text(turn, "sms.info_general")
        lines = self.content.helplines({"helpline_region": code}, turn.lang)
        return self.text(turn, "helplines.body", **lines)

    def _signs(self, turn: Turn, parsed: Parsed) -> str:
        return self.text(turn, "sms.signs")

    def _rights(self, turn: Turn, parsed: Parsed) -> str:
        """HAK, or HAK IBU / HAK ANAK (RIGHTS MOTHER / RIGHTS CHILD) for the page on mothers or children."""
        topics = {"ibu": "mother", "mother": "mother", "mothers": "mother",
                  "anak": "child", "child": "child", "children": "child"}
        topic = topics.get(parsed.words[0]) if parsed.words else None
        return self.text(turn, f"sms.rights_{topic}" if topic else "sms.rights")

    def _migrate(self, turn: Turn, parsed: Parsed) -> str:
        """AMAN / SAFE: how to go abroad to work safely, one SMS."""
        return self.text(turn, "sms.migrate")

    def _status(self, turn: Turn, parsed: Parsed) -> str:
        ref = parsed.words[0].upper() if parsed.words else ""
        report = turn.session.scalar(select(Report).where(Report.ref == ref,
                                                          Report.reporter_index.in_(turn.indexes)))
        if report is None:  # someone else's code reads exactly like a code that does not exist
            return self.text(turn, "sms.unknown_ref")
        state = self.text(turn, f"sms.state.{STATUS_SHOWN.get(report.status, 'received')}")
        return self.text(turn, "sms.status", ref=report.ref, state=state)

    def _help(self, turn: Turn, key: str = "sms.help") -> Optional[str]:
        """At most one help text (or kind word to chatter) per number per interval: two
        auto-replying machines cannot loop, and `ok`, `makasih` get no lecture."""
        cutoff = now() - timedelta(seconds=HELP_REPLY_INTERVAL_SECONDS)
        due = turn.session.execute(update(Contact).where(
            Contact.id == turn.contact.id,
            (Contact.help_sent_at.is_(None)) | (Contact.help_sent_at < cutoff)).values(help_sent_at=now())
            .execution_options(synchronize_session="fetch")).rowcount  # compared in SQL: SQLite keeps no zone
        return self.text(turn, key) if due else None

    # -- reports ---------------------------------------------------------------------------------

    def _join(self, turn: Turn, parsed: Parsed) -> str:
        """IKUT <area>: awareness messages for that kabupaten/kota, until STOP."""
        code = self._place_code(parsed.rest)
        if code is None:
            return self.text(turn, "sms.join_usage")
        turn.contact.subscribed_region = code
        return self.text(turn, "sms.joined", region=self.content.directory.region(code).short)

    def _watch(self, turn: Turn, parsed: Parsed) -> Optional[str]:
        """PANTAU <place> <what>: from a registered volunteer a trusted report (their own area
        when the text names none); from anyone else, an ordinary one."""
        return self._report(turn, parsed, community.active_volunteer(turn.session, turn.indexes))

    def _report(self, turn: Turn, parsed: Parsed, volunteer: Optional[Volunteer] = None) -> Optional[str]:
        if not parsed.words:
            return self.text(turn, "sms.report_usage")
        return self._new_report(turn, parsed.rest, self.content.reader.read(parsed.rest), volunteer)

    def _new_report(self, turn: Turn, details: str, reading: Reading,
                    volunteer: Optional[Volunteer] = None) -> Optional[str]:
        limiter, reports = self.rt.limiter, self.rt.limits["reports"]
        if limiter.used_up(reports, turn.indexes[0]):
            return self.text(turn, "sms.limited_reports") if self._first_refusal(turn, "reports") else None
        limiter.hit(reports, turn.indexes[0])
        if (pending := self._pending(turn)) is not None:  # a new report: the unfinished one is filed as it is
            self._file(turn, pending, reply=False)
        vault = self.rt.vault
        report = Report(
            ref=new_ref(), channel=turn.inbound.channel,
            session_key=session_key(turn.inbound.channel, turn.inbound.provider_id),
            region_code=reading.region or (volunteer.region_code if volunteer else None),
            place=reading.place.detail() if reading.place else None,
            category=reading.category, trusted=volunteer is not None, victim=reading.victim,
            urgent=reading.urgent, contact_ok=False,
            reporter_phone_enc=vault.encrypt(turn.sender), reporter_index=vault.blind_index(turn.sender),
            details_enc=vault.encrypt(details), lang=turn.lang, status=ReportStatus.INCOMPLETE)
        turn.session.add(report)
        turn.session.flush()
        dispatch.audit(turn.session, report.id, "received", reading.intent.value, actor=turn.inbound.channel)
        if report.urgent:
            return self._file_urgent(turn, report)
        return self._next_step(turn, report)

    def _answer(self, turn: Turn, parsed: Parsed) -> Optional[str]:
        """Text without a keyword: the answer to a pending question, or else read for what it is."""
        if (report := self._pending(turn)) is not None:
            return self._follow_up(turn, report)
        reader = self.content.reader
        if (report := self._awaiting_place(turn)) is not None:
            short = len(parsed.words) <= SHORT_ANSWER_WORDS
            mention = reader.place(turn.text, whole_answer=short)
            if mention is not None:
                return self._place_given(turn, report, mention.place)
        reading = turn.reading or reader.read(turn.text)
        if reading.intent.files_report:
            return self._new_report(turn, turn.text, reading)
        if reading.intent is Intent.QUESTION and reading.region:
            return self._helplines(turn, reading.region)
        # Without a place the answer is the same general text each time: once an interval, so
        # two machines answering each other cannot loop.
        key = {Intent.QUESTION: "sms.info_general", Intent.CHATTER: "sms.chatter"}.get(reading.intent, "sms.help")
        return self._help(turn, key)

    def _follow_up(self, turn: Turn, report: Report) -> Optional[str]:
        """An answer to the place or modus question. Either may be answered (a place also names
        itself after the place question was given up); a bare number only ever answers the
        numbered modus question; new words reach the responders with the report."""
        turn.lang = turn.contact.lang or report.lang
        words = self.content.reader.folder.spelled(turn.text)
        reading = self.content.reader.read(turn.text, whole_answer=len(words) <= SHORT_ANSWER_WORDS)
        if report.region_code is None and reading.region:
            report.region_code, report.place = reading.region, reading.place.detail()
        report.category = report.category or self._category_number(words) or reading.category
        if reading.intent.files_report or len(words) > SHORT_ANSWER_WORDS:
            vault = self.rt.vault
            report.details_enc = vault.encrypt(f"{vault.decrypt(report.details_enc)} / {turn.text.strip()}")
        if reading.urgent and not report.urgent:
            report.urgent = True
            return self._file_urgent(turn, report)
        return self._next_step(turn, report)

    def _category_number(self, words: list[str]) -> Optional[str]:
        choices = self.content.keywords.category_choices
        if len(words) == 1 and words[0].isdigit() and 1 <= int(words[0]) <= len(choices):
            return choices[int(words[0]) - 1]
        return None

    def _file_urgent(self, turn: Turn, report: Report) -> str:
        """Someone in danger: filed and alerted now, whatever is missing. Without a place it
        goes to the province-level units and the reporter is asked once where it is."""
        self._file(turn, report, reply=False)
        if report.region_code:  # the reporter's own reply names the kabupaten/kota only: it must fit
            region = self.content.directory.region(report.region_code).short
            return self.text(turn, "sms.urgent_done", ref=report.ref, region=region)
        report.follow_ups += 1
        return self.text(turn, "sms.urgent_ask_place", ref=report.ref)

    def _awaiting_place(self, turn: Turn) -> Optional[Report]:
        """An urgent report filed without a place whose reporter was asked where it is."""
        return turn.session.scalar(select(Report).where(
            Report.reporter_index.in_(turn.indexes), Report.urgent.is_(True), Report.region_code.is_(None),
            Report.follow_ups > 0, Report.status != ReportStatus.INCOMPLETE, Report.closed_at.is_(None),
            Report.created_at >= now() - timedelta(seconds=SMS_FOLLOW_UP_SECONDS) * self.rt.settings.time_scale)
            .order_by(Report.id.desc()).limit(1))

    def _place_given(self, turn: Turn, report: Report, place) -> str:
        turn.lang = turn.contact.lang or report.lang
        turn.report_id = report.id
        report.region_code, report.place = place.region, place.detail()
        dispatch.audit(turn.session, report.id, "place_given", report.region_code, actor=turn.inbound.channel)
        if report.status != ReportStatus.RECEIVED:  # already routed: the place adds its local agencies
            dispatch.reroute_for_place(self.rt, turn.batch, report)
        region = self.content.directory.region(report.region_code).short
        return self.text(turn, "sms.place_given", ref=report.ref, region=region)

    def _pending(self, turn: Turn) -> Optional[Report]:
        return turn.session.scalar(select(Report).where(
            Report.reporter_index.in_(turn.indexes), Report.status == ReportStatus.INCOMPLETE,
            Report.created_at >= now() - timedelta(seconds=SMS_FOLLOW_UP_SECONDS) * self.rt.settings.time_scale)
            .order_by(Report.id.desc()).limit(1))

    def _next_step(self, turn: Turn, report: Report) -> str:
        turn.report_id = report.id
        if report.follow_ups < SMS_FOLLOW_UP_QUESTIONS:
            question = None
            if report.region_code is None and report.follow_ups < SMS_FOLLOW_UP_QUESTIONS - 1:
                question = "sms.ask_region"  # asked at most twice, so the modus can still be asked
            elif report.category is None:
                question = "sms.ask_category"
            if question:
                if report.follow_ups == 0:  # the first question starts the window for the answers
                    turn.job("finish_report", report.id,
                             outbox.due(self.rt, timedelta(seconds=SMS_FOLLOW_UP_SECONDS)))
                report.follow_ups += 1
                return self.text(turn, question)
        return self._file(turn, report)

    def _file(self, turn: Turn, report: Report, reply: bool = True) -> Optional[str]:
        report.category = report.category or "other"
        dispatch.route_now(self.rt, turn.batch, report)
        turn.report_id = report.id
        return self.text(turn, "sms.report_done", ref=report.ref) if reply else None

    # -- responders ------------------------------------------------------------------------------

    def _responder(self, turn: Turn) -> Optional[Responder]:
        return turn.session.scalar(select(Responder).where(Responder.phone_index.in_(turn.indexes),
                                                           Responder.active.is_(True)).order_by(Responder.id))

    def _responder_case(self, turn: Turn, parsed: Parsed) -> tuple[Optional[Responder], Optional[Report]]:
        """The sender as a duty responder, and the report named, if that responder's agency was
        alerted about it. Anything else gets the same answer as an unknown code."""
        responder = self._responder(turn)
        ref = parsed.words[0].upper() if parsed.words else ""
        if responder is None or not ref:
            return None, None
        report = turn.session.scalar(
            select(Report).join(Message, Message.report_id == Report.id)
            .join(Responder, Message.responder_id == Responder.id)
            .where(Report.ref == ref, Message.purpose == "alert", Responder.agency_id == responder.agency_id)
            .limit(1))
        return responder, report

    def _ack(self, turn: Turn, parsed: Parsed) -> str:
        if not parsed.words:  # a bare TERIMA: the form it needs
            return self.text(turn, "sms.ack_usage")
        responder, report = self._responder_case(turn, parsed)
        if report is None:
            return self.text(turn, "sms.unknown_ref")
        turn.report_id = report.id
        if dispatch.acknowledge(turn.session, report, responder.agency_id, f"responder:{responder.id}", responder.id):
            self._feedback(turn, report)
        elif report.acknowledged_by != responder.id:
            return self.text(turn, "sms.ack_already", ref=report.ref)
        return self.text(turn, "sms.ack_done", ref=report.ref)

    def _feedback(self, turn: Turn, report: Report) -> None:
        """One SMS to a reporter who agreed to be contacted, worded to reveal nothing to
        whoever else may read that phone."""
        if report.contact_ok and report.reporter_phone_enc:
            body = self.catalog.text(report.lang, "sms.feedback", ref=report.ref)
            dispatch.queue_sms(self.rt, turn.batch, self.rt.vault.decrypt(report.reporter_phone_enc), body, "feedback",
                               channel=chat_channel(report.channel), report_id=report.id)

    def _close(self, turn: Turn, parsed: Parsed) -> str:
        responder, report = self._responder_case(turn, parsed)
        if report is None:
            return self.text(turn, "sms.unknown_ref")
        turn.report_id = report.id
        dispatch.close_for_agency(turn.session, report, responder.agency_id, actor=f"responder:{responder.id}")
        return self.text(turn, "sms.closed", ref=report.ref)



# Each keyword's handler (config/keywords.yaml names the same commands, checked at start-up);
# `answer` reads a text that is no command.
HANDLERS: dict[str, Callable[[SmsDesk, Turn, Parsed], Optional[str]]] = {
    "report": SmsDesk._report, "watch": SmsDesk._watch, "join": SmsDesk._join, "info": SmsDesk._info,
    "signs": SmsDesk._signs, "rights": SmsDesk._rights, "status": SmsDesk._status,
    "language": SmsDesk._language, "stop": SmsDesk._stop, "start": SmsDesk._start, "ack": SmsDesk._ack,
    "close": SmsDesk._close, "migrate": SmsDesk._migrate, "answer": SmsDesk._answer,
}
