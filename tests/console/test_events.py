"""Server-sent events: a console hears of a new case, and of a case's new messages, as they happen."""

from __future__ import annotations

import json
import threading
import time

import redis

from referral.console.events import stream_position
from referral.queue import Referrals


def _events(response, wanted: int) -> list[dict]:
    """The `case` events of an open stream, until `wanted` arrived or the stream ended."""
    found, current = [], {}
    for line in response.iter_lines():
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and current:
            found.append(current)
            current = {}
            if len(found) >= wanted:
                break
    return found


def test_a_new_case_reaches_an_open_queue_page(sign_in, open_case, db: redis.Redis) -> None:
    ana = sign_in("ana")
    opened: list[str] = []

    def texts_in() -> None:
        time.sleep(0.4)  # after the page started following
        opened.append(open_case("emergency"))

    writer = threading.Thread(target=texts_in)
    started = time.monotonic()
    with ana.client.stream("GET", "/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        writer.start()
        events = _events(response, 1)
    writer.join()

    assert events[0]["data"] == {"case": opened[0], "action": "opened", "priority": "emergency"}
    assert time.monotonic() - started < 2.5  # pushed, not found at the end of the stream


def test_a_reconnecting_page_gets_what_it_missed(sign_in, open_case, db: redis.Redis) -> None:
    ana = sign_in("ana")
    position = stream_position(db)
    first, second = open_case(), open_case()

    with ana.client.stream("GET", "/events", headers={"last-event-id": position}) as response:
        events = _events(response, 2)

    assert [e["data"]["case"] for e in events] == [first, second]
    with ana.client.stream(
        "GET", "/events", headers={"last-event-id": events[0]["id"]}
    ) as response:
        assert [e["data"]["case"] for e in _events(response, 1)] == [second]


def test_a_case_page_follows_only_its_case(sign_in, open_case, db: redis.Redis) -> None:
    ana = sign_in("ana")
    mine, other = open_case(), open_case()
    position = stream_position(db)
    referrals = Referrals(db)
    referrals.append_message(other, text="not for this page")
    referrals.append_message(mine, text="are you there?")

    with ana.client.stream("GET", f"/events?case={mine}&since={position}") as response:
        events = _events(response, 1)

    assert events[0]["data"] == {"case": mine, "action": "message_received", "priority": "high"}
    assert "are you there" not in json.dumps(events)  # events never carry a text


def test_the_stream_needs_a_signed_in_counsellor(anonymous) -> None:
    response = anonymous.get("/events", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
