"""SMS conversations end to end in one process: the webhook, the jobs (run inline, in order)
and the africastalking SDK sending to the local fake. Each test reads as the exchange a
resident or a responder would see on their phone."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from inline_jobs import drain, sms_texter
from sqlalchemy import func, select, update

from gateway.cases import roster
from gateway.store.models import AuditEvent, Contact, InboundMessage, Message, Report
from workers import jobs

RESIDENT = "+6281298765432"
NEIGHBOUR = "+6281311112222"
_ids = itertools.count(1)


@pytest.fixture
def rt(at_app):
    return at_app.extensions["gateway"].runtime


@pytest.fixture
def phone(at_app, rt, fake_at, monkeypatch):
    """`phone(number)` returns a function that texts the service and returns the SMS that came back."""
    client = at_app.test_client()

    def make(number: str):
        return sms_texter(client, rt, fake_at, monkeypatch, number)

    return make


@pytest.fixture
def oki_desk(rt):
    return roster.add(rt, "polres_oki", "Piket PPA Polres OKI", "+6281277776666")


def report_of(rt, ref: str) -> Report:
    with rt.db.session() as session:
        return session.scalar(select(Report).where(Report.ref == ref))


def ref_in(reply: str) -> str:
    return reply.split("Kode: ")[1][:6] if "Kode: " in reply else reply.split("Code: ")[1][:6]


def test_report_naming_place_and_modus_is_filed_and_alerted_at_once(phone, rt, oki_desk, fake_at):
    replies = phone(RESIDENT)("LAPOR anak saya dibawa calo ke Malaysia, paspor ditahan. Dari Kayuagung")
    assert len(replies) == 1 and replies[0].startswith("Terima kasih, sudah kami terima. Kode: ")
    report = report_of(rt, ref_in(replies[0]))
    assert (report.region_code, report.category, report.victim, report.status) == ("16.02", "illegal_pmi", "child",
                                                                                   "routed")
    alerts = [m for m in fake_at.messages if m["to"] == oki_desk.phone]
    assert len(alerts) == 1 and alerts[0]["message"].startswith(f"TPPO {report.ref}: TKI/PMI tanpa izin, korban anak")
    quoted = alerts[0]["message"].split('"')[1]  # cut, but keeping what happened and where
    assert quoted.startswith("anak saya dibawa") and "paspor ditahan kayuagung" in quoted
    assert RESIDENT not in alerts[0]["message"]
    assert len(alerts[0]["message"]) <= 160


def test_missing_place_and_modus_are_asked_one_at_a_time(phone, rt, oki_desk):
    text = phone(RESIDENT)
    assert text("lapor ada yang mencurigakan di desa kami") == [
        "Di kabupaten/kota mana kejadiannya? Balas nama daerah, mis. OKI, Muba, Palembang. Hapus pesan ini bila HP "
        "dipakai orang lain."]
    assert text("kayu agung")[0].startswith("Apa yang terjadi? Balas angka: 1 Kerja palsu")
    done = text("2")
    assert done[0].startswith("Terima kasih, sudah kami terima. Kode: ")
    report = report_of(rt, ref_in(done[0]))
    assert (report.region_code, report.category, report.status, report.follow_ups) == ("16.02", "illegal_pmi",
                                                                                       "routed", 2)


def test_questions_stop_after_three_and_the_report_is_filed_anyway(phone, rt):
    """An auto-replying phone answering nonsense cannot keep a conversation going."""
    text = phone(RESIDENT)
    asked = [text("lapor tolong"), text("hmm"), text("tidak tahu")]
    assert [a[0].split("?")[0] for a in asked] == ["Di kabupaten/kota mana kejadiannya"] * 2 + ["Apa yang terjadi"]
    filed = text("entahlah")
    report = report_of(rt, ref_in(filed[0]))
    assert (report.region_code, report.category, report.status) == (None, "other", "unassigned")
    assert text("apa?") and text("lagi?") == []  # now only the hourly help text, once


def test_unanswered_report_is_filed_when_the_window_closes(phone, rt, fake_at, monkeypatch):
    assert phone(RESIDENT)("LAPOR ada penampungan calon pekerja")[0].startswith("Di kabupaten/kota mana")
    with rt.db.session() as session:
        report = session.scalar(select(Report))
        assert report.status == "incomplete"
    ran = drain(rt, monkeypatch, skip=())  # the scheduled finish_report, run now
    assert ("finish_report", report.id, "filed as it was") in ran
    report = report_of(rt, report.ref)
    assert report.status in ("routed", "unassigned") and report.region_code is None
    assert fake_at.messages[-1]["message"].startswith(f"Terima kasih, sudah kami terima. Kode: {report.ref}")


def test_report_in_english_and_language_choice(phone, rt):
    text = phone(RESIDENT)
    assert text("REPORT job scam with high pay in Palembang")[0].startswith("Thank you, received. Code: ")
    assert text("BAHASA ID") == ["Bahasa: Indonesia. Kirim LAPOR, INFO atau TANDA."]
    assert text("language en") == ["Language: English. Send REPORT, HELP or SIGNS."]
    assert text("tanda")[0].startswith("Warning signs:")  # the chosen language wins over the keyword's
    assert text("BAHASA klingon") == ["Send LANGUAGE EN (English) or LANGUAGE ID (Indonesia)."]


def test_status_only_for_the_number_that_reported(phone, rt):
    ref = ref_in(phone(RESIDENT)("LAPOR lowongan kerja palsu gaji besar di Muba")[0])
    assert phone(RESIDENT)(f"status {ref.lower()}") == [f"Kode {ref}: diterima, sedang diteruskan."]
    assert phone(NEIGHBOUR)(f"STATUS {ref}") == ["Kode tidak dikenal. Periksa kode Anda."]
    assert phone(RESIDENT)("STATUS ZZZZZZ") == ["Kode tidak dikenal. Periksa kode Anda."]


def test_stop_silences_every_later_message_until_start(phone, rt, fake_at):
    text = phone(RESIDENT)
    assert text("Stop thank you") == [
        "Anda tidak akan menerima pesan lagi dari layanan ini. Kirim MULAI untuk mengaktifkan kembali."]
    assert text("INFO OKI") == [] and text("LAPOR calo di Muba minta biaya") == []
    with rt.db.session() as session:
        states = session.scalars(select(Message.state).where(Message.purpose == "reply")).all()
        assert states == ["suppressed", "suppressed"]
        assert session.scalar(select(Report.status)) == "unassigned"  # the report itself still counts
    assert text("MULAI") == ["Pesan dari layanan ini aktif kembali. Kirim LAPOR, INFO atau TANDA."]
    assert text("tanda")[0].startswith("Tanda bahaya:")


@pytest.mark.parametrize("variant", ["STOP", "stop.", "BERHENTI", "Berhénti!", "  unsubscribe please"])
def test_stop_variants(phone, rt, variant):
    phone(RESIDENT)(variant)
    with rt.db.session() as session:
        assert session.scalar(select(Contact.opted_out)) is True


def test_info_for_an_area_and_in_general(phone):
    oki = phone(RESIDENT)("INFO OKI")[0]
    assert oki.startswith("OKI:\n") and "SAPA 129" in oki and "110" in oki
    assert phone(RESIDENT)("bantuan")[0].startswith("SAPA 129 / WA 08111-129-129 (perempuan & anak), polisi 110")
    assert phone(RESIDENT)("HELP Lubuklinggau")[0].startswith("Lubuklinggau:\n")


def test_unknown_text_gets_help_once_an_hour(phone, rt):
    text = phone(RESIDENT)
    first = text("kemarin saya lihat berita di televisi soal banjir besar")
    assert first[0].startswith("Kirim: LAPOR")
    assert text("halo?") == [] and text("🙂") == [] and text("ok makasih") == []
    with rt.db.session() as session:
        session.execute(update(Contact).values(help_sent_at=datetime.now(timezone.utc) - timedelta(hours=2)))
    assert len(text("halo lagi")) == 1


def test_responder_acknowledges_and_closes(phone, rt, oki_desk):
    ref = ref_in(phone(RESIDENT)("LAPOR penipuan kerja gaji besar di OKI")[0])
    responder = phone(oki_desk.phone)
    assert responder(f"terima {ref}") == [f"{ref} Anda terima. Terima kasih. Kirim SELESAI {ref} bila kasus selesai."]
    assert report_of(rt, ref).status == "acknowledged"
    assert phone(RESIDENT)(f"STATUS {ref}") == [f"Kode {ref}: sedang ditangani petugas."]
    assert responder(f"SELESAI {ref}") == [f"{ref} ditutup. Terima kasih."]
    report = report_of(rt, ref)
    assert report.status == "closed" and report.acknowledged_by == oki_desk.id
    with rt.db.session() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.report_id == report.id)).all()
    assert {"received", "routed", "alert_sent", "acknowledged", "closed"} <= set(actions)


def test_second_responder_is_told_it_was_taken(phone, rt, oki_desk):
    other = roster.add(rt, "polres_oki", "Piket 2", "+6281277775555")
    ref = ref_in(phone(RESIDENT)("LAPOR penipuan kerja gaji besar di OKI")[0])
    phone(oki_desk.phone)(f"TERIMA {ref}")
    assert phone(other.phone)(f"ok {ref}") == [f"{ref} sudah diterima petugas lain."]
    assert report_of(rt, ref).acknowledged_by == oki_desk.id


def test_non_responders_and_other_agencies_learn_nothing(phone, rt, oki_desk):
    ref = ref_in(phone(RESIDENT)("LAPOR penipuan kerja gaji besar di OKI")[0])
    palembang = roster.add(rt, "polres_palembang", "Piket Palembang", "+6281277774444")
    unknown = ["Kode tidak dikenal. Periksa kode Anda."]
    told = phone(NEIGHBOUR)(f"TERIMA {ref}")  # a resident's `terima ...` is ordinary text
    assert told and not any(ref in t or "dikenal" in t for t in told)
    assert phone(palembang.phone)(f"TERIMA {ref}") == unknown
    assert phone(oki_desk.phone)("TERIMA ZZZZZZ") == unknown
    assert report_of(rt, ref).status == "routed"


def test_failed_alert_goes_to_the_next_duty_number_once(phone, at_app, rt, oki_desk, fake_at, monkeypatch):
    second = roster.add(rt, "polres_oki", "Piket 2", "+6281277775555")
    roster.remove(rt, second.id)  # off the roster when the report comes in
    ref = ref_in(phone(RESIDENT)("LAPOR penipuan kerja gaji besar di OKI")[0])
    roster.add(rt, "polres_oki", "Piket 2", "+6281277775555")  # back on duty
    first = next(m for m in fake_at.messages if m["to"] == oki_desk.phone)
    client = at_app.test_client()
    for _ in range(2):  # the provider repeats itself; the second report changes nothing
        client.post("/at/delivery", data={"id": first["message_id"], "status": "Failed",
                                           "failureReason": "UserIsInactive"})
        drain(rt, monkeypatch)
    to_second = [m for m in fake_at.messages if m["to"] == "+6281277775555"]
    assert len(to_second) == 1 and to_second[0]["message"].startswith(f"TPPO {ref}")
    with rt.db.session() as session:
        states = dict(session.execute(select(Message.responder_id, Message.state)
                                      .where(Message.purpose == "alert")).all())
    assert states == {oki_desk.id: "failed", second.id: "sent"}


def test_handling_a_message_twice_replies_once(phone, rt, fake_at, monkeypatch):
    phone(RESIDENT)("TANDA")
    with rt.db.session() as session:
        inbound_id = session.scalar(select(InboundMessage.id))
    assert jobs.handle_sms(inbound_id) == "already handled"
    assert len([m for m in fake_at.messages if m["to"] == RESIDENT]) == 1


def _texted(at_app, rt, body: str) -> int:
    """An SMS received by the webhook, its handling job not run yet: the inbound id."""
    response = at_app.test_client().post("/at/sms", data={"from": RESIDENT, "to": "12345", "text": body,
                                                          "id": f"ATSMS_{next(_ids):06d}", "date": "2026-11-28"})
    assert response.status_code == 200
    with rt.db.session() as session:
        return session.scalar(select(InboundMessage.id).order_by(InboundMessage.id.desc()))


def _queued_sends(rt) -> list[str]:
    return [j for j in rt.queue.job_ids + rt.queue.scheduled_job_registry.get_job_ids() if j.startswith("send_sms-")]


def test_the_job_that_handles_an_sms_sends_its_reply_itself(at_app, rt, fake_at, monkeypatch):
    monkeypatch.setattr(jobs, "runtime", lambda: rt)
    assert jobs.handle_sms(_texted(at_app, rt, "INFO Palembang")) == "info"
    assert [m["to"] for m in fake_at.messages] == [RESIDENT]  # no send job of its own
    assert _queued_sends(rt) == []
    with rt.db.session() as session:
        assert session.scalar(select(Message.state)) == "sent"


def test_a_reply_that_fails_in_the_handling_job_is_left_to_rq_after_a_back_off(at_app, rt, fake_at, monkeypatch):
    monkeypatch.setattr(jobs, "runtime", lambda: rt)
    fake_at.fail_next(1)
    jobs.handle_sms(_texted(at_app, rt, "INFO Palembang"))
    with rt.db.session() as session:
        message_id, state = session.execute(select(Message.id, Message.state)).one()
    assert state == "retry" and fake_at.messages == []
    assert _queued_sends(rt) == [f"send_sms-{message_id}"]  # scheduled, not tried again at once
    assert rt.queue.scheduled_job_registry.get_job_ids() == [f"send_sms-{message_id}"]
    assert jobs.send_sms(message_id) == "sent" and [m["to"] for m in fake_at.messages] == [RESIDENT]


# -- messages in people's own words (the intake) -------------------------------------------------

def alerts_to(fake_at, number: str) -> list[str]:
    return [m["message"] for m in fake_at.messages if m["to"] == number]


@pytest.mark.parametrize("text, agency, desk, region", [
    ("TOLONG saya disekap di Kayuagung, tidak boleh pulang", "polres_oki", "+6281277776601", "OKI"),
    ("Saya mau lapor, adik saya dibawa calo ke Malaysia dari Lahat, sudah 2 minggu tidak bisa dihubungi",
     "polres_lahat", "+6281277776602", "Lahat"),
    ("LAPOR tetangga saya ditawari kerja ke luar negeri oleh calo tanpa dokumen, di Belitang",
     "polres_oku_timur", "+6281277776603", "OKU Timur (kec. Belitang)"),
    ("tlg sy di kurung di rmh majikan di palembang", "polres_palembang", "+6281277776604", "Palembang"),
])
def test_a_message_in_plain_words_alerts_the_agency_of_its_place(phone, rt, fake_at, text, agency, desk, region):
    roster.add(rt, agency, "Piket", desk)
    replies = phone(RESIDENT)(text)
    alert = alerts_to(fake_at, desk)
    assert len(alert) == 1 and f", {region}." in alert[0], alert
    assert len(replies) == 1 and ref_in(replies[0]) in alert[0]
    report = report_of(rt, ref_in(replies[0]))
    shown = next(r.code for r in rt.content.directory.regions if region.split(" (")[0] == r.short)
    assert report.status == "routed" and report.region_code == shown


@pytest.mark.parametrize("text", ["Terima kasih", "ok", "OK makasih ya", "tes"])
def test_thanks_and_ok_from_a_resident_get_a_kind_word_never_wrong_code(phone, rt, fake_at, oki_desk, text):
    replies = phone(RESIDENT)(text)
    assert all("Kode tidak dikenal" not in r for r in replies) and len(replies) <= 1
    assert alerts_to(fake_at, oki_desk.phone) == []
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 0


def test_a_cry_for_help_without_a_place_goes_to_the_province_then_to_the_place_named(phone, rt, fake_at):
    province = roster.add(rt, "polda_ppa_ppo", "Piket Polda", "+6281277776611")
    local = roster.add(rt, "polres_ogan_ilir", "Piket OI", "+6281277776612")
    text = phone(RESIDENT)
    asked = text("Oi tolong adik aku hilang")
    ref = ref_in(asked[0])
    assert "Di mana" in asked[0]
    assert len(alerts_to(fake_at, province.phone)) == 1 and alerts_to(fake_at, local.phone) == []
    assert report_of(rt, ref).region_code is None  # `oi` here is a call, not Ogan Ilir
    thanks = text("di indralaya")
    assert "Ogan Ilir" in thanks[0] and ref in thanks[0]
    local_alert = alerts_to(fake_at, local.phone)
    assert len(local_alert) == 1 and ", Ogan Ilir." in local_alert[0] and "DARURAT" in local_alert[0]
    assert len(alerts_to(fake_at, province.phone)) == 1  # alerted once, not again


def test_a_bare_terima_from_a_responder_is_told_the_form(phone, oki_desk):
    assert phone(oki_desk.phone)("TERIMA") == ["Balas TERIMA lalu kode laporan, mis. TERIMA K7Q2MX."]


def test_an_sms_reporter_s_alert_says_the_number_is_not_shared(phone, fake_at, oki_desk):
    phone(RESIDENT)("LAPOR penipuan kerja gaji besar di OKI")
    alert = alerts_to(fake_at, oki_desk.phone)[0]
    assert "Via SMS, nomor rahasia" in alert and "minta tidak dihubungi" not in alert
