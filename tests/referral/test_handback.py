"""Closing a case resumes the bot through Rasa's API and sends one closing line."""

from __future__ import annotations

import asyncio
import json

import httpx
import redis

from hotline.conversations import OUTBOUND_STREAM
from hotline.rasa import RasaClient
from referral import handback
from referral.queue import Referrals

CLOSING = {
    "pt": "O conselheiro terminou a conversa. Pode continuar a escrever ao assistente.",
    "sw": "Mshauri amemaliza. Unaweza kuendelea kumwandikia msaidizi.",
}


class FakeRasa:
    """Rasa's HTTP API as the hand-back uses it: events and execute, recorded."""

    def __init__(self, language: str = "pt", up: bool = True) -> None:
        self.language, self.up, self.calls = language, up, []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("refused")
        body = json.loads(request.content or b"null")
        self.calls.append((request.method, request.url.path, body))
        if request.url.path.endswith("/execute"):
            return httpx.Response(
                200,
                json={
                    "tracker": {},
                    "messages": [{"recipient_id": "c1", "text": CLOSING[self.language]}],
                },
            )
        return httpx.Response(200, json={"sender_id": "c1", "events": []})

    def client(self, settings) -> RasaClient:
        return RasaClient(
            settings, client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        )


def claimed_case(referrals: Referrals, language: str = "pt") -> str:
    case_id = referrals.open_case("c1", priority="high", channel="sms", language=language).case_id
    referrals.claim(case_id, "ana")
    return case_id


def test_closing_resumes_the_bot_and_sends_one_closing_line(db: redis.Redis, settings) -> None:
    referrals = Referrals(db)
    case_id = claimed_case(referrals, "sw")
    rasa = FakeRasa("sw")

    case = asyncio.run(
        handback.close_and_resume(
            referrals,
            rasa.client(settings),
            case_id,
            "ana",
            "referred_child_protection",
            "called 116 with her",
        )
    )

    assert case.outcome == "referred_child_protection"
    assert [(method, path, body) for method, path, body in rasa.calls] == [
        ("POST", "/conversations/c1/tracker/events", [{"event": "resume"}]),
        ("POST", "/conversations/c1/execute", {"name": "action_case_closed"}),
        (
            "POST",
            "/conversations/c1/tracker/events",
            [{"event": "action", "name": "action_listen"}],
        ),
    ]
    sent = [fields for _, fields in db.xrange(OUTBOUND_STREAM)]
    assert sent == [{"conversation_id": "c1", "text": CLOSING["sw"], "source": "bot"}]
    # The next message goes to the bot: no open case for the conversation.
    assert referrals.open_case_id("c1") is None
    assert [e.action for e in referrals.audit(case_id)][-2:] == ["closed", "resumed"]


def test_when_rasa_is_down_the_case_closes_and_the_resume_is_retried(
    db: redis.Redis, settings
) -> None:
    referrals = Referrals(db)
    case_id = claimed_case(referrals)
    rasa = FakeRasa(up=False)

    case = asyncio.run(
        handback.close_and_resume(referrals, rasa.client(settings), case_id, "ana", "declined")
    )

    assert case.status == "closed"
    assert db.smembers(handback.RESUME_PENDING) == {case_id}
    assert db.xlen(OUTBOUND_STREAM) == 0

    rasa.up = True
    assert asyncio.run(handback.resume_pending(referrals, rasa.client(settings))) == 1
    assert db.smembers(handback.RESUME_PENDING) == set()
    assert [f["text"] for _, f in db.xrange(OUTBOUND_STREAM)] == [CLOSING["pt"]]
