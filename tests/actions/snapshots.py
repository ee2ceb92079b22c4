"""Tracker snapshots as Rasa 3.6 sends them to the action server, built from a script."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker


def user(
    text: str, intent: str, confidence: float = 0.95, metadata: dict | None = None
) -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "metadata": metadata or {},
        "parse_data": {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "entities": [],
        },
    }


def action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


def tracker(events: list[dict[str, Any]], slots: dict[str, Any] | None = None) -> Tracker:
    last_user = next((e for e in reversed(events) if e["event"] == "user"), None)
    latest = dict(last_user["parse_data"]) if last_user else {}
    if last_user:
        latest["metadata"] = last_user.get("metadata", {})
    return Tracker(
        sender_id="c0123456789abcdef0123456789abcd",
        slots=slots or {},
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )
