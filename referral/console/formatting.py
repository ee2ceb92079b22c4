"""How the console writes times and waits: in the hotline's time zone, short enough for a phone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo


def waited(seconds: float) -> str:
    """3 min, 2 h 05, 1 d 4 h: a queue row's wait, to the minute."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d}"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def duration(seconds: float | None) -> str:
    """A figure on the dashboard, to the second while short: 45 s, 4 min 05 s, 38 min,
    2 h 07 min, 3 d 4 h."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 10:
        return f"{minutes} min {secs:02d} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def clock(zone: ZoneInfo, now: float, seconds: bool = False) -> Callable[[float | None], str]:
    """A function writing a moment as 14:05 today and 2024-05-07 14:05 on any other day."""
    today = datetime.fromtimestamp(now, zone).date()
    time_of_day = "%H:%M:%S" if seconds else "%H:%M"

    def when(moment: float | None) -> str:
        if not moment:
            return "—"
        local = datetime.fromtimestamp(moment, zone)
        return local.strftime(time_of_day if local.date() == today else f"%Y-%m-%d {time_of_day}")

    return when


def iso(at: float | None, zone: ZoneInfo) -> str | None:
    """The moment for a <time datetime=…> attribute."""
    return datetime.fromtimestamp(at, zone).isoformat(timespec="seconds") if at else None
