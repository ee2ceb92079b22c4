"""Reading a conversation out of a tracker snapshot: messages, metadata, the risk window."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from protection import risk

# A hand-back (the console resumes the bot) starts a new risk window: what was disclosed
# before is in the closed case, and the bot must not re-offer a counsellor for it.
WINDOW_START_EVENTS = {"resume", "restart"}


def window(tracker: Tracker) -> list[dict[str, Any]]:
    """The events since the last hand-back or restart."""
    events = tracker.events or []
    for index in range(len(events) - 1, -1, -1):
        if events[index].get("event") in WINDOW_START_EVENTS:
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
