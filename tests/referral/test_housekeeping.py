"""The timer `make run` supervises: old cases are purged, once an hour."""

from __future__ import annotations

import time

import redis

from referral import housekeeping
from referral.queue import Referrals

DAY = 86400


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

    # Purged less than an hour ago: this round does nothing.
    recent = time.time() - 60
    assert housekeeping.tick(settings, db, last_purge=recent) == recent
    assert Referrals(db).get(old).transcript

    housekeeping.tick(settings, db, last_purge=0.0)
    case = Referrals(db).get(old)
    assert case.transcript == [] and case.outcome == "referred_police"
