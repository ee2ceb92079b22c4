"""Keeping a conversation's Rasa history short, so a turn costs the same at turn 10 and turn 500.

Rasa 3.6's Redis tracker store keeps a conversation as one JSON value and, on every turn,
reads it whole, replays it and merges it with what it is about to save; the action server is
sent the whole session too. A person who uses the hotline for months waited longer and longer
(turn 200 in 7 s, turn 300 in 15 s) and then not at all. So once the stored history passes
`LIMIT_BYTES`, the router has it compacted here: the last `KEEP_EVENTS` events stay, starting
at a message of the person's, behind a new session start that carries every slot's current
value (the language, the risk reading), as Rasa's own session start does.

What is cut is older than the risk window needs: the screen reads the messages since the last
case opened, and a disclosure spread over a few messages is still whole in the events kept.
The case transcripts hold what a counsellor needs of the past.

The value is rewritten in Redis directly, in Rasa's own format ({"name", "events"}), under
WATCH: if Rasa saves the conversation meanwhile, the compaction is dropped and tried again at
the next turn. The key keeps its expiry (endpoints.yml record_exp).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from hotline import keys

log = logging.getLogger(__name__)

LIMIT_BYTES = 256 * 1024  # about 75 turns of 3.3 KB
KEEP_EVENTS = 240  # about 30 turns: the risk window's messages and the dialogue policy's context


def _slots(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Every slot's value at the end of the events, as Rasa would replay them."""
    values: dict[str, Any] = {}
    for event in events:
        kind = event.get("event")
        if kind == "slot" and event.get("name"):
            values[event["name"]] = event.get("value")
        elif kind in ("restart", "reset_slots"):
            values = {}
    return {name: value for name, value in values.items() if value is not None}


def compacted(events: list[dict[str, Any]], keep: int = KEEP_EVENTS) -> list[dict[str, Any]] | None:
    """The events with all but the last `keep` replaced by a session start carrying the slots;
    None when there is nothing to cut."""
    if len(events) <= keep:
        return None
    start = len(events) - keep
    while start < len(events) and events[start].get("event") != "user":
        start += 1
    if start >= len(events):
        return None
    kept = events[start:]
    at = float(kept[0].get("timestamp") or 0.0) - 0.001
    head: list[dict[str, Any]] = [
        {"event": "action", "name": "action_session_start", "timestamp": at},
        {"event": "session_started", "timestamp": at},
    ]
    head += [
        {"event": "slot", "name": name, "value": value, "timestamp": at}
        for name, value in _slots(events[:start]).items()
    ]
    head.append({"event": "action", "name": "action_listen", "timestamp": at})
    return head + kept


def compact(db: redis.Redis, conversation_id: str, limit_bytes: int = LIMIT_BYTES) -> bool:
    """Compact the conversation's stored history when it is over `limit_bytes`; True if it was.

    Cheap when there is nothing to do (one STRLEN), so the router calls it after every turn.
    """
    key = keys.tracker(conversation_id)
    if db.strlen(key) <= limit_bytes:
        return False
    with db.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(key)
            stored = pipe.get(key)
            if stored is None:
                return False
            dialogue = json.loads(stored)
            events = compacted(dialogue.get("events") or [])
            if events is None:
                return False
            pipe.multi()
            pipe.set(key, json.dumps({**dialogue, "events": events}), keepttl=True)
            pipe.execute()
        except redis.WatchError:
            return False  # Rasa saved a turn meanwhile: the next turn tries again
    log.info("conversation %s: history compacted to %d events", conversation_id, len(events))
    return True
