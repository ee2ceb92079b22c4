"""Who is on duty: rota hours and console heartbeats; what a person is told when nobody is."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from referral import rota
from referral.texts import text

MAPUTO = ZoneInfo("Africa/Maputo")
ROTA = rota.parse_rota(
    {
        "timezone": "Africa/Maputo",
        "presence_seconds": 90,
        "shifts": {day: ["06:00-21:00"] for day in rota.DAYS} | {"sunday": []},
    }
)


def at(text: str) -> float:
    """Epoch seconds of a Maputo wall-clock time, e.g. 'Mon 2024-05-06 10:00'."""
    return datetime.strptime(text[4:], "%Y-%m-%d %H:%M").replace(tzinfo=MAPUTO).timestamp()


def test_the_project_rota_is_every_day_six_to_nine() -> None:
    project = rota.load_rota()
    assert all(
        project.shifts[day] == [(datetime(2024, 1, 1, 6).time(), datetime(2024, 1, 1, 21).time())]
        for day in range(7)
    )
    assert project.timezone.key == "Africa/Maputo"


def test_a_present_counsellor_is_on_duty_and_the_rota_speaks_when_nobody_is(
    db: redis.Redis,
) -> None:
    monday_morning = at("Mon 2024-05-06 10:00")
    monday_night = at("Mon 2024-05-06 23:00")
    # Nobody has the console open: the rota's hours decide.
    assert rota.on_duty(db, monday_morning, ROTA)
    assert not rota.on_duty(db, monday_night, ROTA)
    # Two counsellors answering at night are on duty: the bot must not say nobody is.
    rota.heartbeat(db, "ana", now=monday_night - 30, rota=ROTA)
    assert rota.present(db, monday_night) == ["ana"]
    assert rota.on_duty(db, monday_night, ROTA)
    # The heartbeat lapses when the console closes without signing out.
    assert not rota.on_duty(db, monday_night + 120, ROTA)
    # Signing out ends presence at once.
    rota.heartbeat(db, "ben", now=monday_night, rota=ROTA)
    assert rota.on_duty(db, monday_night, ROTA)
    rota.leave(db, "ben")
    assert not rota.on_duty(db, monday_night, ROTA)


@pytest.mark.parametrize(
    ("now", "language", "expected"),
    [
        ("Mon 2024-05-06 03:00", "pt", "a partir de hoje às 06:00"),
        ("Mon 2024-05-06 22:00", "pt", "a partir de amanha às 06:00"),
        ("Mon 2024-05-06 22:00", "en", "from tomorrow at 06:00"),
        ("Mon 2024-05-06 22:00", "fr", "dès demain à 06:00"),
        ("Mon 2024-05-06 22:00", "sw", "kuanzia kesho saa 12 asubuhi (06:00)"),
        # Sunday is off in this rota: from Saturday night the next shift is Monday.
        ("Sat 2024-05-11 22:00", "pt", "a partir de segunda-feira às 06:00"),
        ("Sat 2024-05-11 22:00", "en", "from Monday at 06:00"),
        ("Sat 2024-05-11 22:00", "fr", "dès lundi à 06:00"),
        ("Sat 2024-05-11 22:00", "sw", "kuanzia Jumatatu saa 12 asubuhi (06:00)"),
        # During a shift with nobody present, the promise is the next start, never sooner.
        ("Mon 2024-05-06 12:00", "en", "from tomorrow at 06:00"),
    ],
)
def test_next_shift_says_plainly_when_someone_will_answer(
    now: str, language: str, expected: str
) -> None:
    assert rota.next_shift(at(now), language, ROTA) == expected


def test_an_empty_rota_promises_no_time() -> None:
    empty = rota.parse_rota({"shifts": {}})
    assert rota.next_shift(at("Mon 2024-05-06 12:00"), "en", empty) == "from the next shift"
    assert not rota.in_hours(at("Mon 2024-05-06 12:00"), empty)


# What the person reads: each text says "pode responder {next_shift}", so every value the rota
# can give must read right there, with its preposition in the form its words need.
@pytest.mark.parametrize(
    ("now", "language", "rota_data", "reads"),
    [
        # Portuguese contracts "de o" to "do": the empty rota says "no proximo turno" instead.
        ("Mon 2024-05-06 12:00", "pt", {}, "pode responder no proximo turno."),
        ("Mon 2024-05-06 03:00", "pt", None, "pode responder a partir de hoje às 06:00."),
        # French elides "de aujourd'hui"; "dès" needs neither.
        ("Mon 2024-05-06 03:00", "fr", None, "pourra vous répondre dès aujourd'hui à 06:00."),
        ("Mon 2024-05-06 12:00", "fr", {}, "pourra vous répondre dès la prochaine permanence."),
        ("Mon 2024-05-06 12:00", "en", {}, "can answer from the next shift."),
        ("Mon 2024-05-06 12:00", "sw", {}, "anaweza kukujibu kuanzia zamu ijayo."),
    ],
)
def test_every_shift_value_reads_right_in_the_sentence(
    now: str, language: str, rota_data: dict | None, reads: str
) -> None:
    chosen = ROTA if rota_data is None else rota.parse_rota({"shifts": rota_data})
    said = text(
        "utter_nobody_on_duty", language, next_shift=rota.next_shift(at(now), language, chosen)
    )
    assert reads in said, said
    assert "de o " not in said and "de aujourd" not in said


def test_a_night_shift_is_two_ranges() -> None:
    night = rota.parse_rota({"shifts": {"monday": ["22:00-24:00"], "tuesday": ["00:00-06:00"]}})
    assert rota.in_hours(at("Mon 2024-05-06 23:30"), night)
    assert rota.in_hours(at("Tue 2024-05-07 05:59"), night)
    assert not rota.in_hours(at("Tue 2024-05-07 06:00"), night)


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (6, 0, "12 asubuhi (06:00)"),
        (7, 30, "1:30 asubuhi (07:30)"),
        (13, 0, "7 mchana (13:00)"),
        (18, 0, "12 jioni (18:00)"),
        (21, 0, "3 usiku (21:00)"),
        (2, 0, "8 usiku (02:00)"),
    ],
)
def test_swahili_hours_count_from_six_in_the_morning(hour: int, minute: int, expected: str) -> None:
    assert rota.swahili_time(hour, minute) == expected


def test_portuguese_shift_words_stay_in_the_sms_alphabet() -> None:
    from hotline.sms import encoding

    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    for day in range(7):
        said = rota.next_shift(at(f"{names[day]} 2024-05-{6 + day:02d} 22:00"), "pt", ROTA)
        assert encoding(said) == "GSM-7", said
