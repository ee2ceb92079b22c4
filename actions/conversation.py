"""Reading a conversation out of a tracker snapshot: messages, metadata, the risk window."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from protection import risk

# Opening a case starts a new risk window: what was disclosed before is in the case, and the
# next message the bot sees comes after the case was closed (or after the person stepped back
# to the bot; channels/router.py), so the bot must not re-offer a counsellor for it. "resume"
# is the hand-back event of trackers written before Rasa stopped being paused.
WINDOW_START_EVENTS = {"resume", "restart"}
WINDOW_START_ACTION = "action_open_case"


def _starts_window(event: dict[str, Any]) -> bool:
    if event.get("event") in WINDOW_START_EVENTS:
        return True
    return event.get("event") == "action" and event.get("name") == WINDOW_START_ACTION


def window(tracker: Tracker) -> list[dict[str, Any]]:
    """The events since the last case opened, or the last restart."""
    events = tracker.events or []
    for index in range(len(events) - 1, -1, -1):
        if _starts_window(events[index]):
            return events[index + 1 :]
    return list(events)


def user_messages(events: list[dict[str, Any]]) -> list[risk.Turn]:
    """Each user message with the model's whole reading of it, oldest first."""
    return [
        risk.Turn.from_parse(event.get("text") or "", event.get("parse_data") or {})
        for event in events
        if event.get("event") == "user"
    ]


def ran(events: list[dict[str, Any]], action: str) -> bool:
    return any(e.get("event") == "action" and e.get("name") == action for e in events)


def latest_metadata(tracker: Tracker) -> dict[str, Any]:
    """The gateway's metadata ({"language", "channel"}) on the latest user message."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}
