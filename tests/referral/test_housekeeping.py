"""The timer `make run` supervises: a resume Rasa missed is finished, old cases are purged."""

from __future__ import annotations

import asyncio
import time

import redis

from referral import handback, housekeeping
from referral.queue import Referrals
from tests.referral.test_handback import FakeRasa, claimed_case

DAY = 86400


def test_a_missed_resume_waits_for_rasa_then_goes_through(db: redis.Redis, settings) -> None:
    referrals = Referrals(db)
    case_id = claimed_case(referrals)
    down = FakeRasa(up=False)
    asyncio.run(
        handback.close_and_resume(referrals, down.client(settings), case_id, "ana", "declined")
    )
    assert db.sismember(handback.RESUME_PENDING, case_id)

    asyncio.run(housekeeping.tick(settings, db, down.client(settings), last_purge=time.time()))
    assert db.sismember(handback.RESUME_PENDING, case_id), "dropped while Rasa was still down"

    up = FakeRasa()
    asyncio.run(housekeeping.tick(settings, db, up.client(settings), last_purge=time.time()))
    assert not db.sismember(handback.RESUME_PENDING, case_id)
    assert ("POST", "/conversations/c1/tracker/events", [{"event": "resume"}]) in up.calls


def test_cases_closed_before_the_retention_period_are_purged_once_an_hour(
    db: redis.Redis, settings
) -> None:
    past = {"t": time.time() - (settings.retention_days + 5) * DAY}
    referrals = Referrals(db, clock=lambda: past["t"])
    old = referrals.open_case(
        "c-old",
        priority="high",
        channel="sms",
        language="pt",
        transcript=[(1.0, "person", "o patrão tirou o meu passaporte")],
    ).case_id
    referrals.close(old, "ana", "referred_police")
    rasa = FakeRasa()

    # Purged less than an hour ago: this round only retries resumes.
    recent = time.time() - 60
    assert (
        asyncio.run(housekeeping.tick(settings, db, rasa.client(settings), last_purge=recent))
        == recent
    )
    assert Referrals(db).get(old).transcript

    asyncio.run(housekeeping.tick(settings, db, rasa.client(settings), last_purge=0.0))
    case = Referrals(db).get(old)
    assert case.transcript == [] and case.outcome == "referred_police"
