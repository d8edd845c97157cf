"""The intake's parts on the shipped data: places as people name them, words as they type
them, and alerts cut at words that keep the place and time (no Flask, no Redis)."""
from __future__ import annotations

import pytest

from flows.intake import Intent
from gateway.cases import alerts
from gateway.content import load_content

CONTENT = load_content()
READER = CONTENT.reader

PLACES = [
    ("adik dibawa calo dari kayuagung", "16.02", None),
    ("di kayu agung kemarin", "16.02", None),
    ("ditawari kerja di Belitang", "16.08", "kec. Belitang"),
    ("penampungan di belitang 3", "16.08", "kec. Belitang III"),
    ("oku timur, martapura", "16.08", None),
    ("muara dua", "16.09", None),
    ("lubuk linggau", "16.73", None),
    ("plembang", "16.71", None),
    ("dekat jembatan ampera", "16.71", "Jembatan Ampera"),
    ("anak saya di kikim", "16.04", "Kikim"),
    ("kab OI", "16.10", None),
    ("di desa saya", None, None),
    ("Oi tolong", None, None),
    ("kerja di martapura kalsel", None, None),
    ("gaji selangit", None, None),
    ("ketemu di simpang jalan", None, None),
    ("kec. Simpang", "16.09", "kec. Simpang"),
]


@pytest.mark.parametrize("text, region, detail", PLACES, ids=[p[0] for p in PLACES])
def test_places_as_people_name_them(text, region, detail):
    mention = READER.place(text, whole_answer=False)
    assert (mention.place.region if mention else None) == region
    assert (mention.place.detail() if mention else None) == detail


def test_every_kecamatan_is_found_by_its_name():
    for region in CONTENT.directory.regions:
        for kecamatan in region.kecamatan:
            mention = READER.place(f"kejadian di kec. {kecamatan.name} kemarin", whole_answer=False)
            assert mention and mention.place.region == region.code, kecamatan.name


def test_no_ordinary_word_is_taken_for_a_place():
    """Every Indonesian root word (Sastrawi's dictionary), alone in a sentence without a
    place marker, names no place: only real names do."""
    placed = [w for w in sorted(READER.folder.root_words)
              if READER.place(f"saya lihat {w} kemarin", whole_answer=False)]
    names = {k[0] for k, p in READER.gazetteer.places().items() if len(k) == 1 and not p.ambiguous}
    assert set(placed) <= names, sorted(set(placed) - names)[:20]
    assert len(placed) <= 40, placed


WORDS = [
    ("tlg sy di kurung di rmh majikan", Intent.DISTRESS),
    ("adik sy dikuncinya di kamar", Intent.DISTRESS),
    ("kunci motor ketinggalan di rumah", Intent.UNKNOWN),
    ("foto nya kabur", Intent.CHATTER),
    ("saya kabur dari majikan, takut", Intent.DISTRESS),
    ("anak2 disuruh kerja di kebun, gak sekolah", Intent.REPORT),
    ("kalau anak dibawa calo lapor kemana?", Intent.QUESTION),
    ("TOLONG", Intent.QUESTION),
    ("makasih ya", Intent.CHATTER),
]


@pytest.mark.parametrize("text, intent", WORDS, ids=[w[0] for w in WORDS])
def test_words_as_people_type_them(text, intent):
    assert READER.read(text).intent is intent


def test_an_alert_cut_keeps_the_place_and_the_time():
    words = ("adik saya dibawa orang yang mengaku dari perusahaan sawit, katanya kerja enak gaji besar, "
             "sekarang tidak bisa pulang dan dijaga terus, tolong cepat, di Belitang malam ini")
    keep = READER.read(words).keep
    body = alerts.compose(CONTENT.engine, ref="K7Q2MX", category="forced_labour", victim="unknown",
                          region_label="OKU Timur (kec. Belitang)", urgent=True, contact_phone=None,
                          details=words, via="sms", keep=keep)
    assert keep[:2] == ("tidak bisa pulang", "belitang") and "malam ini" in keep
    quoted = body.split('"')[1]
    assert len(body) <= 160 and quoted.startswith("..tidak bisa pulang belitang")
    roomy = alerts.compose(CONTENT.engine, ref="K7Q2MX", category="other", victim="unknown", region_label="OKI",
                           urgent=False, contact_phone=None, details=words, via="sms", keep=keep)
    quoted = roomy.split('"')[1]
    assert len(roomy) <= 160 and quoted.startswith("adik saya dibawa")
    assert "tidak bisa pulang belitang" in quoted and quoted.endswith("malam ini")


def test_an_escalation_says_it_is_one_and_why():
    body = alerts.compose(CONTENT.engine, ref="K7Q2MX", category="job_fraud", victim="woman", region_label="OKI",
                          urgent=False, contact_phone=None, via="sms", escalation=("Polres OKI", 120))
    assert body.startswith("ESKALASI: belum dijawab Polres OKI dlm 120 mnt.") and len(body) <= 160
