"""The supervisor's figures: plain arithmetic first, then gathered from a real Redis queue."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from referral import privacy, stats
from referral.queue import OUTCOMES, Referrals
from referral.stats import CaseFacts

MAPUTO = ZoneInfo("Africa/Maputo")


def at(text: str) -> float:
    """Epoch seconds of a Maputo wall-clock time, '2024-05-08 10:00'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=MAPUTO).timestamp()


NOW = at("2024-05-08 10:00")


class Clock:
    """Stands still until the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def facts(
    case_id: str = "R1",
    *,
    opened: float = NOW,
    claimed: float | None = None,
    closed: float | None = None,
    status: str | None = None,
    level: str = "high",
    language: str = "pt",
    outcome: str | None = None,
) -> CaseFacts:
    status = status or ("closed" if closed else "claimed" if claimed else "waiting")
    return CaseFacts(
        id=case_id,
        status=status,
        risk_level=level,
        language=language,
        channel="sms",
        priority="high",
        opened_at=opened,
        claimed_at=claimed,
        closed_at=closed,
        outcome=outcome,
    )


# ---------------------------------------------------------------- arithmetic


def test_a_wait_ends_when_a_counsellor_takes_the_case_or_it_closes_untaken_or_now() -> None:
    assert stats.wait_seconds(facts(opened=NOW - 600, claimed=NOW - 300), NOW) == 300
    assert stats.wait_seconds(facts(opened=NOW - 600, closed=NOW - 100), NOW) == 500
    assert stats.wait_seconds(facts(opened=NOW - 600), NOW) == 600
    assert stats.wait_seconds(facts(opened=NOW + 5), NOW) == 0  # clocks a little apart


def test_median_and_longest_wait_count_only_the_cases_opened_since_the_given_moment() -> None:
    cases = [
        facts("R1", opened=NOW - 3600, claimed=NOW - 3600 + 60),
        facts("R2", opened=NOW - 1800, claimed=NOW - 1800 + 180),
        facts("R3", opened=NOW - 900),  # still waiting: 900 s so far
        facts("R4", opened=NOW - 86_400, claimed=NOW - 3600),  # yesterday's: not counted
    ]
    figures = stats.wait_stats(cases, since=NOW - 7200, now=NOW)
    assert figures == stats.WaitStats(
        cases=3, median_seconds=180, longest_seconds=900, longest_case="R3"
    )
    assert stats.wait_stats([], since=0, now=NOW) == stats.WaitStats(0, None, None, None)
    two = stats.wait_stats(cases[:2], since=0, now=NOW)
    assert two.median_seconds == 120  # the mean of the middle pair


def test_waiting_cases_are_counted_per_risk_level_most_urgent_first() -> None:
    waiting = [
        facts(level="emergency"),
        facts(level="high"),
        facts(level="high"),
        facts(level="weird"),
    ]
    counts = stats.waiting_by_level(waiting)
    assert list(counts) == ["emergency", "high", "elevated", "none"]
    assert counts == {"emergency": 1, "high": 2, "elevated": 0, "none": 1}


def test_outcomes_list_every_code_then_the_cases_still_open() -> None:
    cases = [
        facts("R1", opened=NOW, closed=NOW, outcome="referred_shelter"),
        facts("R2", opened=NOW, closed=NOW, outcome="referred_shelter"),
        facts("R3", opened=NOW, closed=NOW, outcome="retired_code"),
        facts("R4", opened=NOW, claimed=NOW),
        facts("R5", opened=NOW),
    ]
    counts = stats.by_outcome(cases)
    assert list(counts)[: len(OUTCOMES)] == list(OUTCOMES)
    assert list(counts)[-1] == stats.STILL_OPEN
    assert counts["referred_shelter"] == 2
    assert counts["retired_code"] == 1
    assert counts["open"] == 2
    assert sum(counts.values()) == len(cases)


def test_languages_list_the_hotline_four_first_then_any_other() -> None:
    cases = [facts(language="sw"), facts(language="sw"), facts(language="pt"), facts(language="")]
    assert stats.by_language(cases) == {"pt": 1, "en": 0, "fr": 0, "sw": 2, "unknown": 1}


def test_the_day_and_the_window_follow_the_hotline_time_zone_not_the_server() -> None:
    # 01:00 in Maputo is still the previous day in UTC.
    early = at("2024-05-08 01:00")
    assert stats.start_of_day(early, MAPUTO) == at("2024-05-08 00:00")
    assert (
        stats.start_of_day(early, ZoneInfo("UTC"))
        == datetime(2024, 5, 7, tzinfo=ZoneInfo("UTC")).timestamp()
    )
    assert stats.window_start(early, MAPUTO) == at("2024-04-09 00:00")  # 30 days with today
    assert stats.window_start(early, MAPUTO, days=1) == at("2024-05-08 00:00")


# ---------------------------------------------------------------- from the queue


def open_case(referrals: Referrals, cid: str, *, level: str = "high", language: str = "pt") -> str:
    priority = {"emergency": "emergency", "high": "high"}.get(level, "request")
    return referrals.open_case(
        cid, priority=priority, channel="sms", language=language, risk_level=level, consent="given"
    ).case_id


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def referrals(db: redis.Redis, clock: Clock) -> Referrals:
    return Referrals(db, clock=clock)


def test_the_dashboard_figures_for_a_known_day(
    db: redis.Redis, referrals: Referrals, clock: Clock
) -> None:
    # Forty days ago: outside the window altogether.
    clock.now = NOW - 40 * 86_400
    ancient = open_case(referrals, "c0")
    referrals.close(ancient, "ana", "declined")
    # Yesterday: in the 30 days, not in today's waits.
    clock.now = at("2024-05-07 15:00")
    yesterday = open_case(referrals, "c1", language="sw")
    clock.now += 1200
    referrals.claim(yesterday, "ana")
    clock.now += 600
    referrals.close(yesterday, "ana", "referred_shelter")
    # Today: waits of 2 min (closed), 6 min (erased after closing), 10 min (still claimed), and two waiting.
    clock.now = at("2024-05-08 08:00")
    first = open_case(referrals, "c2", language="en")
    clock.now += 120
    referrals.claim(first, "ana")
    referrals.close(first, "ana", "information_given")
    clock.now = at("2024-05-08 08:30")
    erased = open_case(referrals, "c3", language="fr")
    clock.now += 360
    referrals.claim(erased, "bia")
    referrals.close(erased, "bia", "referred_police")
    privacy.anonymise_case(db, erased, now=clock.now)
    clock.now = at("2024-05-08 09:00")
    taken = open_case(referrals, "c4")
    clock.now += 600
    referrals.claim(taken, "bia")
    clock.now = at("2024-05-08 09:40")
    urgent = open_case(referrals, "c5", level="emergency")
    clock.now = at("2024-05-08 09:55")
    latest = open_case(referrals, "c6", level="elevated", language="en")

    figures = stats.dashboard(referrals, MAPUTO, now=NOW)

    assert figures.waiting_by_level == {"emergency": 1, "high": 0, "elevated": 1, "none": 0}
    assert figures.waiting_total == 2
    assert figures.oldest_waiting_seconds == 20 * 60
    # Today: 120, 360, 600, 1200 (c5, waiting 20 min), 300 (c6): median 360, longest c5.
    assert figures.wait_today == stats.WaitStats(
        cases=5, median_seconds=360, longest_seconds=1200, longest_case=urgent
    )
    assert figures.cases_in_window == 6  # not the 40-day-old one
    assert figures.by_outcome["referred_shelter"] == 1
    assert figures.by_outcome["information_given"] == 1
    assert figures.by_outcome["referred_police"] == 1  # erased cases still count
    assert figures.by_outcome["declined"] == 0
    assert figures.by_outcome["open"] == 3
    assert figures.by_language == {"pt": 2, "en": 2, "fr": 1, "sw": 1}
    # Queue order (emergency first), then the claimed ones.
    assert [c.id for c in figures.open_cases] == [urgent, latest, taken]
    assert [c.id for c in figures.recently_closed] == [erased, first, yesterday]


def test_the_window_figures_stay_right_as_past_days_change_between_loads(
    db: redis.Redis, referrals: Referrals, clock: Clock
) -> None:
    """Past days are counted once and kept; an erasure, a new day and another time zone are
    all seen on the next load."""
    closed = {}
    for day, outcome, language in (
        ("2024-04-09", "declined", "pt"),  # the window's first day
        ("2024-04-20", "referred_avrr", "sw"),
        ("2024-05-07", "referred_avrr", "fr"),
    ):
        clock.now = at(f"{day} 23:30")
        case_id = open_case(referrals, f"c{day}", language=language)
        clock.now += 1200  # opened before midnight, closed after it
        referrals.close(case_id, "ana", outcome)
        closed[day] = case_id
    first = stats.dashboard(referrals, MAPUTO, now=NOW)
    assert first.cases_in_window == 3
    assert first.by_outcome["referred_avrr"] == 2
    assert first.by_language == {"pt": 1, "en": 0, "fr": 1, "sw": 1}

    # Erased after the first load: its figures stay (it is kept for statistics).
    privacy.anonymise_case(db, closed["2024-04-20"], now=NOW)
    # A past day that gains a case after it was counted (a backup restored, say) is counted again.
    clock.now = at("2024-05-07 12:00")
    late = open_case(referrals, "clate", language="sw")
    referrals.close(late, "ana", "unreachable")
    clock.now = NOW
    today = open_case(referrals, "ctoday", language="en")
    referrals.close(today, "ana", "information_given")
    second = stats.dashboard(referrals, MAPUTO, now=NOW)
    assert second.cases_in_window == 5
    assert second.by_outcome["information_given"] == 1
    assert second.by_outcome["unreachable"] == 1
    assert second.by_outcome["referred_avrr"] == 2
    assert second.by_language == {"pt": 1, "en": 1, "fr": 1, "sw": 2}

    # A day later the case opened on 9 April has left the window.
    later = stats.dashboard(referrals, MAPUTO, now=NOW + 86_400)
    assert later.cases_in_window == 4
    assert later.by_outcome["declined"] == 0
    # In UTC the 9 April case was opened at 21:30 on the 9th: still a day inside.
    utc = stats.dashboard(referrals, ZoneInfo("UTC"), now=NOW)
    assert utc.cases_in_window == 5


def test_the_dashboard_is_fast_with_500_open_cases(
    db: redis.Redis, referrals: Referrals, clock: Clock
) -> None:
    for n in range(500):
        clock.now = NOW - 3600 + n
        case_id = open_case(
            referrals, f"c{n}", level=("emergency", "high", "elevated", "none")[n % 4]
        )
        if n % 5 == 0:
            referrals.claim(case_id, "ana")
    for n in range(300):
        clock.now = NOW - 86_400 * (n % 29) - 60
        case_id = open_case(referrals, f"old{n}")
        referrals.close(case_id, "ana", OUTCOMES[n % len(OUTCOMES)])
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        figures = stats.dashboard(referrals, MAPUTO, now=NOW)
        timings.append(time.perf_counter() - started)
    assert figures.waiting_total == 400
    assert figures.cases_in_window == 800
    # Generous for a shared machine; typically a few tens of milliseconds.
    assert min(timings) < 0.5, timings
