"""Who is on duty: the counsellors' hours (data/rota.yml) and the console's presence heartbeats."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import redis

from hotline import keys, yamlfiles
from hotline.settings import get_settings

log = logging.getLogger(__name__)

# Sorted set: counsellor name -> the moment their presence lapses (epoch seconds).
PRESENCE = keys.PRESENCE_KEY
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Written in the SMS alphabet: one "ç" or "ã" in a filled-in day would make the whole SMS
# UCS-2 and cost it a segment or two (the content check measures the costliest value).
_WEEKDAYS = {
    "pt": (
        "segunda-feira",
        "terca-feira",
        "quarta-feira",
        "quinta-feira",
        "sexta-feira",
        "sabado",
        "domingo",
    ),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "sw": ("Jumatatu", "Jumanne", "Jumatano", "Alhamisi", "Ijumaa", "Jumamosi", "Jumapili"),
}
_TODAY = {"pt": "hoje", "en": "today", "fr": "aujourd'hui", "sw": "leo"}
_TOMORROW = {"pt": "amanha", "en": "tomorrow", "fr": "demain", "sw": "kesho"}
# {next_shift} is the whole "from when", preposition included: the preposition's form depends
# on what follows it (pt "a partir de" cannot stand before "o proximo turno", which needs "do";
# fr "à partir de" before "aujourd'hui" needs "d'"), so the texts say "pode responder
# {next_shift}" and the phrase is right here for every value.
_AT = {
    "pt": "a partir de {day} às {time}",
    "en": "from {day} at {time}",
    "fr": "dès {day} à {time}",
    "sw": "kuanzia {day} saa {time}",
}
# With no shift in the rota at all there is no time to promise.
_NO_SHIFT = {
    "pt": "no proximo turno",
    "en": "from the next shift",
    "fr": "dès la prochaine permanence",
    "sw": "kuanzia zamu ijayo",
}


@dataclass(frozen=True)
class Rota:
    timezone: ZoneInfo
    # weekday (0 = Monday) -> [(start, end)], end may be 24:00 (written as None)
    shifts: dict[int, list[tuple[clock_time, clock_time | None]]]
    presence_seconds: int = 90


def _parse_time(text: str) -> clock_time | None:
    hours, minutes = (int(part) for part in text.strip().split(":"))
    if (hours, minutes) == (24, 0):
        return None
    return clock_time(hours, minutes)


def parse_rota(data: dict) -> Rota:
    shifts: dict[int, list[tuple[clock_time, clock_time | None]]] = {}
    for index, day in enumerate(DAYS):
        ranges = []
        for spec in (data.get("shifts") or {}).get(day) or []:
            start, _, end = str(spec).partition("-")
            begin = _parse_time(start)
            if begin is None:
                raise ValueError(f"{day}: a shift cannot start at 24:00 ({spec})")
            ranges.append((begin, _parse_time(end)))
        shifts[index] = sorted(ranges, key=lambda r: r[0])
    return Rota(
        timezone=ZoneInfo(str(data.get("timezone") or "Africa/Maputo")),
        shifts=shifts,
        presence_seconds=int(data.get("presence_seconds") or 90),
    )


def load_rota(path: Path | None = None) -> Rota:
    """The rota, re-read when a supervisor edits the file."""
    return yamlfiles.load(path or get_settings().data_dir / "rota.yml", parse_rota)


def _local(now: float | datetime | None, rota: Rota) -> datetime:
    if now is None:
        now = time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("give an aware datetime or epoch seconds")
        return now.astimezone(rota.timezone)
    return datetime.fromtimestamp(now, rota.timezone)


def in_hours(now: float | datetime | None = None, rota: Rota | None = None) -> bool:
    """Whether the rota has counsellors working at this moment."""
    rota = rota or load_rota()
    local = _local(now, rota)
    moment = local.time()
    for start, end in rota.shifts.get(local.weekday(), []):
        if start <= moment and (end is None or moment < end):
            return True
    return False


def next_shift_start(
    now: float | datetime | None = None, rota: Rota | None = None
) -> datetime | None:
    """The next moment a shift begins, strictly after now (local time); None if the rota is empty."""
    rota = rota or load_rota()
    local = _local(now, rota)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        for start, _end in rota.shifts.get(day.weekday(), []):
            begins = datetime.combine(day, start, tzinfo=rota.timezone)
            if begins > local:
                return begins
    return None


def next_shift(now: float | datetime | None, language: str, rota: Rota | None = None) -> str:
    """When someone will answer, for utter_nobody_on_duty, with its preposition:
    "a partir de amanha às 06:00", "from Monday at 06:00", "no proximo turno"."""
    rota = rota or load_rota()
    language = language if language in _WEEKDAYS else "pt"
    begins = next_shift_start(now, rota)
    if begins is None:
        return _NO_SHIFT[language]
    today = _local(now, rota).date()
    if begins.date() == today:
        day = _TODAY[language]
    elif begins.date() == today + timedelta(days=1):
        day = _TOMORROW[language]
    else:
        day = _WEEKDAYS[language][begins.weekday()]
    time_text = begins.strftime("%H:%M")
    if language == "sw":
        time_text = swahili_time(begins.hour, begins.minute)
    return _AT[language].format(day=day, time=time_text)


def swahili_time(hour: int, minute: int) -> str:
    """Swahili counts the hours from 06:00: "saa 06:00" reads as noon, so write "12 asubuhi (06:00)"."""
    if 5 <= hour < 12:
        part = "asubuhi"
    elif 12 <= hour < 16:
        part = "mchana"
    elif 16 <= hour < 19:
        part = "jioni"
    else:
        part = "usiku"
    count = (hour - 6) % 12 or 12
    clock = f"{count}" if minute == 0 else f"{count}:{minute:02d}"
    return f"{clock} {part} ({hour:02d}:{minute:02d})"


# ---------------------------------------------------------------- presence


def heartbeat(
    db: redis.Redis, counsellor: str, *, now: float | None = None, rota: Rota | None = None
) -> None:
    """The console calls this every few seconds while a counsellor has it open."""
    rota = rota or load_rota()
    now = time.time() if now is None else now
    db.zadd(PRESENCE, {counsellor: now + rota.presence_seconds})


def leave(db: redis.Redis, counsellor: str) -> None:
    """On sign-out: no longer present, without waiting for the heartbeat to lapse."""
    db.zrem(PRESENCE, counsellor)


def present(db: redis.Redis, now: float | None = None) -> list[str]:
    """Counsellors whose console checked in recently."""
    now = time.time() if now is None else now
    db.zremrangebyscore(PRESENCE, "-inf", f"({now}")
    return sorted(db.zrangebyscore(PRESENCE, now, "+inf"))


def on_duty(db: redis.Redis, now: float | datetime | None = None, rota: Rota | None = None) -> bool:
    """Someone will answer soon: a counsellor has the console open, or, when nobody is
    signed in, the rota says it is working hours.

    Presence wins over the rota both ways the person would notice: two counsellors answering
    at 22:00 are on duty (the bot must not say "nobody is on duty" while someone is), and in
    working hours a quiet console (between sign-ins, a dropped connection) still means the
    shift will answer.
    """
    rota = rota or load_rota()
    moment = time.time() if now is None else now
    epoch = moment.timestamp() if isinstance(moment, datetime) else moment
    return bool(present(db, epoch)) or in_hours(moment, rota)
