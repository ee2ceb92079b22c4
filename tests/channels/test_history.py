"""A long conversation's Rasa history is compacted, and the bot carries on as before."""

from __future__ import annotations

import json
import uuid

import httpx
import redis

from channels import history
from hotline import keys
from tests.domain import responses
from tests.test_assistant_e2e import QUESTIONS, say


def turn(n: int, text: str = "ola") -> list[dict]:
    at = float(n)
    return [
        {"event": "user", "text": text, "timestamp": at},
        {"event": "slot", "name": "language", "value": "pt", "timestamp": at},
        {"event": "action", "name": "utter_greet", "timestamp": at},
        {"event": "bot", "text": "Ola!", "timestamp": at},
        {"event": "action", "name": "action_listen", "timestamp": at},
    ]


def test_the_last_events_stay_behind_a_session_start_carrying_every_slot() -> None:
    events = [{"event": "slot", "name": "risk_level", "value": "high", "timestamp": 0.0}]
    for n in range(1, 101):
        events += turn(n)
    events.append({"event": "slot", "name": "next_shift", "value": None, "timestamp": 100.5})

    kept = history.compacted(events, keep=12)

    assert kept is not None
    assert [e["event"] for e in kept[:2]] == ["action", "session_started"]
    assert kept[0]["name"] == "action_session_start"
    first_user = next(i for i, e in enumerate(kept) if e["event"] == "user")
    carried = {e["name"]: e["value"] for e in kept[:first_user] if e["event"] == "slot"}
    assert carried == {"risk_level": "high", "language": "pt"}
    # The kept part starts at a message of the person's and ends where the history ended.
    assert kept[first_user - 1] == {"event": "action", "name": "action_listen", "timestamp": 98.999}
    assert kept[first_user:] == events[-11:]
    assert history.compacted(events[:10], keep=12) is None


def test_a_compacted_conversation_goes_on_in_its_language_with_its_slots(
    rasa_stack, db: redis.Redis
) -> None:
    rasa_url = rasa_stack["rasa_url"]
    sender = f"c{uuid.uuid4().hex[:31]}"
    metadata = {"language": "sw", "channel": "sms"}
    for _ in range(6):
        say(rasa_url, sender, QUESTIONS["sw"], metadata)
    key = keys.tracker(sender)
    before = len(json.loads(db.get(key))["events"])
    ttl = db.ttl(key)

    assert history.compact(db, sender, limit_bytes=1) or history.KEEP_EVENTS >= before
    # Keep fewer than a real compaction would, to see the cut.
    stored = json.loads(db.get(key))
    stored["events"] = history.compacted(stored["events"], keep=12)
    db.set(key, json.dumps(stored), keepttl=True)

    # The bot answers the next message from the compacted history, in Swahili, without the
    # gateway's language this time: the slot carried over.
    texts = say(rasa_url, sender, QUESTIONS["sw"])
    assert texts[0] == responses()["utter_return_assistance"]["sw"]
    tracker = httpx.get(f"{rasa_url}/conversations/{sender}/tracker?token=test-rasa-token").json()
    assert tracker["slots"]["language"] == "sw"
    assert len(json.loads(db.get(key))["events"]) < before
    assert db.ttl(key) > 0 and abs(db.ttl(key) - ttl) < 120  # the expiry stays
