"""What a person waiting for a counsellor is told, by the hour and by their risk."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import redis

from hotline import keys
from referral import rota, waiting
from referral.queue import Referrals
from referral.texts import text

MAPUTO = ZoneInfo("Africa/Maputo")
DAYTIME = datetime(2024, 5, 6, 10, 0, tzinfo=MAPUTO).timestamp()  # a Monday, within the rota
NIGHT = datetime(2024, 5, 6, 23, 0, tzinfo=MAPUTO).timestamp()


def waiting_case(db: redis.Redis, priority: str = "request", level: str = "none"):
    referrals = Referrals(db)
    case_id = referrals.open_case(
        "c1",
        priority=priority,
        channel="sms",
        language="en",
        risk_level=level,  # type: ignore[arg-type]
    ).case_id
    return referrals.get(case_id)


def test_in_working_hours_the_person_is_told_a_counsellor_has_the_message(
    db: redis.Redis,
) -> None:
    case = waiting_case(db)
    assert waiting.acknowledgement(db, case, "en", DAYTIME) == [text("utter_waiting_ack", "en")]


def test_at_night_the_person_is_told_when_someone_answers_and_at_risk_gets_night_numbers(
    db: redis.Redis,
) -> None:
    plain = waiting.acknowledgement(db, waiting_case(db), "pt", NIGHT)
    assert plain == [
        text("utter_waiting_ack_off_duty", "pt", next_shift="a partir de amanha às 06:00")
    ]

    db.flushdb()
    at_risk = waiting.acknowledgement(db, waiting_case(db, "high", "high"), "pt", NIGHT)
    assert at_risk[1] == text("utter_danger_numbers", "pt")
    # Linha Verde 1458 is closed at night: it is not among the numbers given then.
    assert "1458" not in " ".join(at_risk) and "119" in at_risk[1] and "116" in at_risk[1]


def test_a_counsellor_present_at_night_means_someone_has_the_message(db: redis.Redis) -> None:
    rota.heartbeat(db, "ana", now=NIGHT - 10)
    assert waiting.acknowledgement(db, waiting_case(db), "en", NIGHT) == [
        text("utter_waiting_ack", "en")
    ]


def test_no_note_while_a_counsellor_is_talking_or_just_after_the_last_one(
    db: redis.Redis,
) -> None:
    referrals = Referrals(db)
    case = waiting_case(db)
    db.set(keys.waiting_ack("c1"), "1", ex=waiting.ACK_INTERVAL)
    assert waiting.acknowledgement(db, case, "en", DAYTIME) == []

    db.delete(keys.waiting_ack("c1"))
    referrals.claim(case.id, "ana")
    referrals.reply(case.id, "ana", "Hello, I am Ana.")
    assert waiting.acknowledgement(db, referrals.get(case.id), "en") == []
