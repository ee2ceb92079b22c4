"""Rasa that takes a message and does not answer in time, against Rasa that is down.

A Rasa stand-in on a loopback port keeps a tracker as Rasa 3.6 does (the REST message's
metadata on its user event, a turn's events saved together) and answers late, or never. The
worker's Rasa client gives up after 0.3 s, as the real one gives up after 30 s.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import redis

from channels import dlq, keywords
from hotline.conversations import INBOUND_STREAM
from hotline.rasa import RasaClient
from hotline.settings import PROJECT_ROOT, Settings
from ops import processes
from tests.channels.conftest import BOT_REPLY, FakeRasa, Phone, Servers, run_sender, run_worker

NOTES = keywords.load(PROJECT_ROOT / "data" / "keywords.yml")
CLIENT_TIMEOUT = 0.3


class LateRasa:
    """Rasa's REST channel and tracker endpoint. Each message takes `answer_after` seconds;
    with `keeps_turns`, the turn is saved in the tracker first (Rasa finished, the answer is
    late), without it the turn is dropped (Rasa gave up on it, as when its request is cut)."""

    def __init__(self, answer_after: float, keeps_turns: bool) -> None:
        self.answer_after = answer_after
        self.keeps_turns = keeps_turns
        self.sent: list[str] = []  # texts posted to the REST channel
        self.tracker_reads = 0
        self.events: dict[str, list[dict[str, Any]]] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, payload: object) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def do_GET(self) -> None:
                sender = self.path.split("/conversations/", 1)[1].split("/", 1)[0]
                stub.tracker_reads += 1
                self._reply({"sender_id": sender, "events": stub.events.get(sender, [])})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.sent.append(body["message"])
                answer = f"answer: {body['message']}"
                if stub.keeps_turns:
                    stub.events.setdefault(body["sender"], []).extend(
                        [
                            {
                                "event": "user",
                                "text": body["message"],
                                "metadata": body["metadata"],
                            },
                            {"event": "bot", "text": answer},
                            {"event": "action", "name": "action_listen"},
                        ]
                    )
                time.sleep(stub.answer_after)
                self._reply([{"recipient_id": body["sender"], "text": answer}])

        self.server = ThreadingHTTPServer(("127.0.0.1", processes.free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def client(self, settings: Settings) -> RasaClient:
        timeout = httpx.Timeout(CLIENT_TIMEOUT, connect=2.0)
        return RasaClient(settings, client=httpx.AsyncClient(timeout=timeout))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def late_settings(servers: Servers, settings_factory) -> Iterator[Any]:
    made: list[LateRasa] = []

    def make(answer_after: float, keeps_turns: bool) -> tuple[Settings, LateRasa]:
        rasa = LateRasa(answer_after, keeps_turns)
        made.append(rasa)
        settings = settings_factory(
            RASA_URL=rasa.url,
            RASA_TOKEN="",
            PUBLIC_URL=servers.gateway_url,
            SANDBOX_URL=servers.sandbox_url,
        )
        return settings, rasa

    yield make
    for rasa in made:
        rasa.close()


def parts(phone: Phone) -> list[str]:
    return [part for body in phone.received() for part in body.split("\n\n")]


def test_a_message_rasa_never_answers_reaches_the_dead_letters_with_the_reason(
    servers: Servers, db: redis.Redis, late_settings
) -> None:
    settings, rasa = late_settings(answer_after=2.0, keeps_turns=False)
    phone = Phone(servers, "+258840000601")
    assert phone.send("I want to go back home").status_code == 200

    started = time.monotonic()
    run_worker(settings, rasa.client(settings), max_failures=3, timeout=60)
    took = time.monotonic() - started
    run_sender(settings)

    # Tried three times, then left for an operator: not sent to Rasa for ever.
    assert rasa.sent == ["I want to go back home"] * 3
    dead = dlq.list_dead(db)
    assert len(dead) == 1, dead
    assert dead[0]["error"] == (
        f"RasaTimedOut: Rasa took the message and gave no answer within {CLIENT_TIMEOUT:g} s"
    )
    assert dead[0]["failures"] == "3"
    assert db.xlen(INBOUND_STREAM) == 0
    # The person was told once that the message arrived, and nothing else.
    assert parts(phone) == [NOTES.note("received_will_answer", "en")]
    print(f"dead-lettered after 3 timeouts in {took:.1f} s")


def test_a_turn_rasa_finished_late_is_answered_from_its_tracker_not_asked_again(
    servers: Servers, db: redis.Redis, late_settings
) -> None:
    """The issue's 900-turn conversation: Rasa finishes each turn after the worker gave up.
    The retry finds the turn in the tracker and sends its answer; Rasa hears it once."""
    settings, rasa = late_settings(answer_after=1.5, keeps_turns=True)
    phone = Phone(servers, "+258840000602")
    assert phone.send("I want to go back home").status_code == 200

    run_worker(settings, rasa.client(settings), max_failures=3, timeout=60)
    run_sender(settings)

    assert rasa.sent == ["I want to go back home"]
    assert rasa.tracker_reads >= 1
    [events] = rasa.events.values()
    assert [e["text"] for e in events if e["event"] == "user"] == ["I want to go back home"]
    assert parts(phone) == [
        NOTES.note("received_will_answer", "en"),
        "answer: I want to go back home",
    ]
    assert dlq.list_dead(db) == []


def test_rasa_down_is_waited_for_past_the_failure_limit(servers: Servers, db: redis.Redis) -> None:
    """Rasa refusing connections is Rasa away, not the message's fault: it waits without a
    limit and is answered when Rasa is back."""

    class DownAWhile(FakeRasa):
        refused = 0

        def handler(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/webhooks/rest/webhook" and self.refused < 6:
                self.refused += 1
                raise httpx.ConnectError("Rasa is down", request=request)
            return super().handler(request)

    rasa = DownAWhile()
    phone = Phone(servers, "+258840000603")
    assert phone.send("I want to go back home").status_code == 200
    run_worker(servers.settings, rasa, max_failures=3, timeout=60)
    run_sender(servers.settings)

    assert rasa.refused == 6 and dlq.list_dead(db) == []
    assert parts(phone) == [NOTES.note("received_will_answer", "en"), BOT_REPLY["en"]]
