"""The supervisor's figures: who waits now, how long people waited today, what became of cases.

The arithmetic is plain functions over `CaseFacts` (a case without its texts), so it is tested
without Redis; `dashboard()` gathers the facts from the queue's own keys in a few pipelined round
trips, reading only the fields it needs. It reads every open case and today's closed ones; a
past day's closed cases are read once and kept as a count (`closed_days`), so the dashboard's
cost follows the open queue and today, not the 30 days of history behind them.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hotline import keys
from hotline.language import LANGUAGES
from referral.queue import OUTCOMES, PRIORITIES, RISK_LEVELS, Case, Referrals

WINDOW_DAYS = 30
# Cases opened in the window and not closed yet: the outcome chart's last bar.
STILL_OPEN = "open"
# What statistics read of a case hash: no conversation id, no summary, no evidence.
_FIELDS = (
    "id",
    "status",
    "risk_level",
    "language",
    "channel",
    "priority",
    "outcome",
    "opened_at",
    "claimed_at",
    "closed_at",
    "claimed_by",
    "closed_by",
)


@dataclass(frozen=True)
class CaseFacts:
    """The parts of a case that figures and the supervisor's lists need; nothing a person wrote."""

    id: str
    status: str
    risk_level: str
    language: str
    channel: str
    priority: str
    opened_at: float
    claimed_at: float | None = None
    closed_at: float | None = None
    outcome: str | None = None
    claimed_by: str | None = None
    closed_by: str | None = None

    @classmethod
    def of(cls, case: Case) -> CaseFacts:
        return cls(
            id=case.id,
            status=case.status,
            risk_level=case.risk_level,
            language=case.language,
            channel=case.channel,
            priority=case.priority,
            opened_at=case.opened_at,
            claimed_at=case.claimed_at,
            closed_at=case.closed_at,
            outcome=case.outcome,
            claimed_by=case.claimed_by,
            closed_by=case.closed_by,
        )


@dataclass(frozen=True)
class WaitStats:
    """How long people waited for a counsellor, over the cases opened since a moment."""

    cases: int
    median_seconds: float | None
    longest_seconds: float | None
    longest_case: str | None


@dataclass(frozen=True)
class Dashboard:
    generated_at: float
    timezone: str
    waiting_by_level: dict[str, int]
    waiting_total: int
    oldest_waiting_seconds: float | None
    wait_today: WaitStats
    window_days: int
    window_start: float
    cases_in_window: int
    by_outcome: dict[str, int]
    by_language: dict[str, int]
    open_cases: list[CaseFacts] = field(default_factory=list)
    recently_closed: list[CaseFacts] = field(default_factory=list)


# ---------------------------------------------------------------- plain arithmetic


def start_of_day(now: float, zone: ZoneInfo) -> float:
    """Local midnight of the day `now` falls in (the hotline's day, not the server's)."""
    local = datetime.fromtimestamp(now, zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def window_start(now: float, zone: ZoneInfo, days: int = WINDOW_DAYS) -> float:
    """Local midnight `days - 1` days ago: the window is today and the days before it."""
    midnight = datetime.fromtimestamp(start_of_day(now, zone), zone)
    # Calendar arithmetic on the local date keeps a daylight-saving change out of the count.
    first = midnight.date() - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=zone).timestamp()


def wait_seconds(case: CaseFacts, now: float) -> float:
    """From opening until a counsellor took it; until closing when closed untaken; else until now."""
    end = case.claimed_at or case.closed_at or now
    return max(0.0, end - case.opened_at)


def waiting_by_level(waiting: Iterable[CaseFacts]) -> dict[str, int]:
    """Waiting cases per risk level, most urgent first; an unknown level counts as none."""
    counts = Counter(c.risk_level if c.risk_level in RISK_LEVELS else "none" for c in waiting)
    return {level: counts[level] for level in reversed(RISK_LEVELS)}


def wait_stats(cases: Iterable[CaseFacts], since: float, now: float) -> WaitStats:
    """Median and longest wait of the cases opened at or after `since`."""
    waits = sorted(
        ((wait_seconds(c, now), c.id) for c in cases if since <= c.opened_at <= now),
        key=lambda pair: pair[0],
    )
    if not waits:
        return WaitStats(cases=0, median_seconds=None, longest_seconds=None, longest_case=None)
    longest, longest_case = waits[-1]
    return WaitStats(
        cases=len(waits),
        median_seconds=statistics.median(w for w, _ in waits),
        longest_seconds=longest,
        longest_case=longest_case,
    )


def outcome_of(case: CaseFacts) -> str:
    return (case.outcome or "") if case.status == "closed" else STILL_OPEN


def by_outcome(cases: Iterable[CaseFacts]) -> dict[str, int]:
    """Closed cases per outcome code (every code listed), then those still open."""
    return outcome_table(Counter(map(outcome_of, cases)))


def outcome_table(counts: Counter[str]) -> dict[str, int]:
    """`by_outcome` from counts already made (of the code, or STILL_OPEN)."""
    counts = Counter(counts)
    result = {outcome: counts.pop(outcome, 0) for outcome in OUTCOMES}
    # Codes retired from OUTCOMES still count, under their own name.
    result.update(
        {code or "unknown": n for code, n in sorted(counts.items()) if code != STILL_OPEN}
    )
    result[STILL_OPEN] = counts[STILL_OPEN]
    return result


def by_language(cases: Iterable[CaseFacts]) -> dict[str, int]:
    """Cases per conversation language: the four hotline languages first, then any other."""
    return language_table(Counter(c.language or "unknown" for c in cases))


def language_table(counts: Counter[str]) -> dict[str, int]:
    """`by_language` from counts already made."""
    counts = Counter(counts)
    result = {language: counts.pop(language, 0) for language in LANGUAGES}
    result.update(sorted(counts.items()))
    return result


# ---------------------------------------------------------------- reading the queue


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _facts(raw: list[str | None]) -> CaseFacts | None:
    values = dict(zip(_FIELDS, raw, strict=True))
    if not values["id"]:
        return None
    return CaseFacts(
        id=values["id"],
        status=values["status"] or "waiting",
        risk_level=values["risk_level"] or "none",
        language=values["language"] or "",
        channel=values["channel"] or "",
        priority=values["priority"] or "request",
        opened_at=_float(values["opened_at"]) or 0.0,
        claimed_at=_float(values["claimed_at"]),
        closed_at=_float(values["closed_at"]),
        outcome=values["outcome"] or None,
        claimed_by=values["claimed_by"] or None,
        closed_by=values["closed_by"] or None,
    )


def _read(referrals: Referrals, case_ids: list[str]) -> list[CaseFacts]:
    # HMGET of a dozen fields, pipelined: half the cost of whole hashes, and never a text.
    if not case_ids:
        return []
    with referrals.db.pipeline(transaction=False) as pipe:
        for case_id in case_ids:
            pipe.hmget(keys.case(case_id), list(_FIELDS))
        rows = pipe.execute()
    return [facts for facts in map(_facts, rows) if facts]


def open_cases(referrals: Referrals) -> tuple[list[CaseFacts], list[CaseFacts]]:
    """The waiting cases in queue order (as `Referrals.list_waiting`) and the claimed ones."""
    # One MULTI, so a case claimed meanwhile is not read as both waiting and claimed.
    with referrals.db.pipeline(transaction=True) as pipe:
        for priority in PRIORITIES:
            pipe.zrange(keys.waiting(priority), 0, -1)
        pipe.zrange(keys.CLAIMED_KEY, 0, -1)
        *queues, claimed = pipe.execute()
    waiting = [case_id for queue in queues for case_id in queue]
    return _read(referrals, waiting), _read(referrals, claimed)


def closed_since(
    referrals: Referrals, since: float, until: float | str = "+inf"
) -> list[CaseFacts]:
    """Cases closed at or after `since` (and before `until`), erased ones included (they are
    kept for statistics).

    `Referrals.list_closed` pages by count; the figures need a time window, so this reads the
    closed and anonymous sets by score.
    """
    db = referrals.db
    end = until if isinstance(until, str) else f"({until}"
    ids = db.zrangebyscore(keys.CLOSED_KEY, since, end) + db.zrangebyscore(
        keys.ANONYMOUS_KEY, since, end
    )
    return _read(referrals, list(dict.fromkeys(ids)))


def recently_closed(referrals: Referrals, since: float, recent: int) -> list[CaseFacts]:
    """The last `recent` cases closed at or after `since`, newest first, erased ones included."""
    db = referrals.db
    ids = db.zrevrangebyscore(
        keys.CLOSED_KEY, "+inf", since, start=0, num=recent
    ) + db.zrevrangebyscore(keys.ANONYMOUS_KEY, "+inf", since, start=0, num=recent)
    closed = [c for c in _read(referrals, list(dict.fromkeys(ids))) if c.status == "closed"]
    return sorted(closed, key=lambda c: c.closed_at or 0, reverse=True)[:recent]


def _days(since: float, until: float, zone: ZoneInfo) -> list[tuple[float, float]]:
    """The local days from `since` (a midnight) to `until` (a later one), as (start, end)."""
    days: list[tuple[float, float]] = []
    day = datetime.fromtimestamp(since, zone).date()
    while True:
        start = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
        if start >= until:
            return days
        day += timedelta(days=1)
        days.append((start, datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()))


_COUNT = "ids"  # the tally's field holding how many case ids it was made from


def closed_days(
    referrals: Referrals, zone: ZoneInfo, since: float, today: float, now: float
) -> Counter[tuple[float, str, str]]:
    """Cases closed on the days from `since` to `today` (both local midnights), counted by
    (local day the case was opened, outcome, language).

    A past day's closed cases change only by erasure (which adds a case to the anonymous set and
    keeps the figures) or by the purge (past retention, far behind the window), so each day's
    count is made once and kept in Redis beside the number of case ids it was made from; when
    that number moves the day is counted again.
    """
    db = referrals.db
    days = _days(since, today, zone)
    with db.pipeline(transaction=False) as pipe:
        for start, end in days:
            pipe.zcount(keys.CLOSED_KEY, start, f"({end}")
            pipe.zcount(keys.ANONYMOUS_KEY, start, f"({end}")
            pipe.hgetall(keys.closed_day(zone.key, start))
        replies = pipe.execute()
    tally: Counter[tuple[float, str, str]] = Counter()
    for index, (start, end) in enumerate(days):
        closed, anonymous, kept = replies[3 * index : 3 * index + 3]
        ids = str(closed + anonymous)
        if kept.get(_COUNT) != ids:
            kept = _count_day(referrals, zone, (start, end), ids, now)
        for field_name, n in kept.items():
            if field_name != _COUNT:
                opened, outcome, language = field_name.split("|", 2)
                tally[(float(opened), outcome, language)] += int(n)
    return tally


def _count_day(
    referrals: Referrals, zone: ZoneInfo, day: tuple[float, float], ids: str, now: float
) -> dict[str, str]:
    start, end = day
    counts = Counter(
        f"{start_of_day(c.opened_at, zone):.0f}|{c.outcome or ''}|{c.language or 'unknown'}"
        for c in closed_since(referrals, start, end)
        if c.status == "closed"
    )
    kept = {_COUNT: ids, **{name: str(n) for name, n in counts.items()}}
    key = keys.closed_day(zone.key, start)
    with referrals.db.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=kept)
        # Kept while the day is in any window the dashboard shows, and a day more (counted from
        # the dashboard's clock, which tests set).
        pipe.expire(key, max(60, int(end + WINDOW_DAYS * 86_400 - now)))
        pipe.execute()
    return kept


def dashboard(
    referrals: Referrals, zone: ZoneInfo, now: float | None = None, recent: int = 20
) -> Dashboard:
    """Everything the supervisor's dashboard shows about cases, at one moment."""
    now = time.time() if now is None else now
    waiting, claimed = open_cases(referrals)
    since, today = window_start(now, zone), start_of_day(now, zone)
    open_ids = {c.id for c in waiting} | {c.id for c in claimed}
    # A case erased while open sits in both the open and the anonymous sets: count it once.
    closed_today = [
        c for c in closed_since(referrals, today) if c.status == "closed" and c.id not in open_ids
    ]
    # Everything opened in the window: the open cases and today's closed ones one by one, the
    # window's earlier days as counts.
    outcomes: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    for case in waiting + claimed + closed_today:
        if case.opened_at >= since:
            outcomes[outcome_of(case)] += 1
            languages[case.language or "unknown"] += 1
    for (opened, outcome, language), n in closed_days(referrals, zone, since, today, now).items():
        if opened >= since:
            outcomes[outcome] += n
            languages[language] += n
    oldest = max((wait_seconds(c, now) for c in waiting), default=None)
    return Dashboard(
        generated_at=now,
        timezone=zone.key,
        waiting_by_level=waiting_by_level(waiting),
        waiting_total=len(waiting),
        oldest_waiting_seconds=oldest,
        # A case opened today was closed today or is open: these are all of today's cases.
        wait_today=wait_stats(waiting + claimed + closed_today, today, now),
        window_days=WINDOW_DAYS,
        window_start=since,
        cases_in_window=sum(outcomes.values()),
        by_outcome=outcome_table(outcomes),
        by_language=language_table(languages),
        open_cases=waiting + claimed,
        recently_closed=recently_closed(referrals, since, recent),
    )
