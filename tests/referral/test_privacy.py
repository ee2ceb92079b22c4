"""Erasure on request and purging after retention: no text and no number is left behind."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
import redis

from hotline import conversations, ids
from hotline.rasa import RasaClient
from referral import privacy
from referral.queue import Referrals
from tests.conftest import FERNET_KEY

NUMBER = "+258841234567"
OTHER_NUMBER = "+258827654321"
SECRET_TEXT = "o patrao guardou o meu passaporte"


def rasa_reading(db: redis.Redis, settings, prefix: str = "rasa:tracker:") -> RasaClient:
    """A Rasa whose tracker store is this Redis, as in production (endpoints.yml)."""

    def handler(request: httpx.Request) -> httpx.Response:
        cid = request.url.path.split("/")[2]
        stored = db.get(prefix + cid)
        events = json.loads(stored)["events"] if stored else []
        return httpx.Response(200, json={"sender_id": cid, "events": events})

    return RasaClient(settings, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def store_tracker(db: redis.Redis, cid: str, texts: list[str], prefix: str = "rasa:tracker:") -> None:
    events = [{"event": "user", "text": t, "timestamp": 1.0 + i} for i, t in enumerate(texts)]
    db.set(prefix + cid, json.dumps({"sender_id": cid, "events": events}))


def seed(db: redis.Redis, cid: str, number: str, text: str) -> None:
    conversations.remember(db, cid, channel="whatsapp", sealed_address=ids.seal(f"whatsapp:{number}", FERNET_KEY))
    conversations.set_language(db, cid, "pt")
    store_tracker(db, cid, ["ola", text])
    # What the gateway and worker leave in the streams (the gateway has the raw address).
    db.xadd(conversations.INBOUND_STREAM, {"from": f"whatsapp:{number}", "body": text, "sid": "SM1"})
    db.xadd(conversations.INBOUND_STREAM, {"conversation_id": cid, "body": text})
    db.xadd(conversations.DEAD_LETTER_STREAM, {"conversation_id": cid, "text": text})


def everything(db: redis.Redis) -> str:
    """Every key and value in Redis, as one text to search."""
    parts = []
    for key in db.scan_iter():
        kind = db.type(key)
        parts.append(key)
        if kind == "string":
            parts.append(db.get(key))
        elif kind == "hash":
            parts.append(json.dumps(db.hgetall(key)))
        elif kind == "stream":
            parts.append(json.dumps(db.xrange(key)))
        elif kind in ("set", "zset"):
            parts.append(json.dumps(sorted(db.smembers(key) if kind == "set" else db.zrange(key, 0, -1))))
    return "\n".join(parts)


def test_erasure_on_request_leaves_no_text_and_no_number(db: redis.Redis, settings) -> None:
    seed(db, "c1", NUMBER, SECRET_TEXT)
    seed(db, "c2", OTHER_NUMBER, "someone else's words")
    referrals = Referrals(db)
    old = referrals.open_case("c1", priority="high", channel="whatsapp", language="pt", risk_level="high",
                              indicators=[{"name": "documents_confiscated", "message_index": 1,
                                           "phrase": "guardou o meu passaporte"}],
                              consent="given", transcript=[(1.0, "person", SECRET_TEXT)]).case_id
    referrals.claim(old, "ana")
    referrals.reply(old, "ana", "Onde está agora?")
    referrals.close(old, "ana", "referred_legal", note="client in Limpopo")
    current = referrals.open_case("c1", priority="request", channel="whatsapp", language="pt",
                                  consent="requested", transcript=[(5.0, "person", "quero falar com alguem")]).case_id
    referrals.append_message(current, text="estou em Polokwane")
    # The sender has already sent the reply; the confirmation of erasure is still to send.
    db.xgroup_create(conversations.OUTBOUND_STREAM, "senders", id="0")
    db.xreadgroup("senders", "s1", {conversations.OUTBOUND_STREAM: ">"})
    for entry_id, _ in db.xrange(conversations.OUTBOUND_STREAM):
        db.xack(conversations.OUTBOUND_STREAM, "senders", entry_id)
    conversations.queue_reply(db, "c1", "Os seus dados foram apagados.", source="system")

    result = asyncio.run(privacy.erase_conversation(db, rasa_reading(db, settings), "c1", fernet_key=FERNET_KEY))

    assert result.cases == 2 and result.tracker_deleted
    left = everything(db)
    for words in (SECRET_TEXT, "guardou o meu passaporte", "Onde está agora?", "client in Limpopo",
                  "estou em Polokwane", "quero falar com alguem", NUMBER):
        assert words not in left
    # The confirmation still goes out: the sender has not handled it yet.
    assert [f["text"] for _, f in db.xrange(conversations.OUTBOUND_STREAM)] == ["Os seus dados foram apagados."]
    db.delete(conversations.OUTBOUND_STREAM)
    # Besides it, only the sealed number's short grace mentions the conversation.
    # (as a whole token: sealed numbers are random base64 that may contain the letters "c1")
    mentions = re.findall(r"(?<![A-Za-z0-9_=-])c1(?![A-Za-z0-9_=-])", everything(db))
    assert mentions == ["c1"], "only the key hotline:conv:c1 may name the conversation"
    sealed = db.hgetall(conversations.key("c1"))
    assert set(sealed) == {"channel", "address"}
    assert 0 < db.ttl(conversations.key("c1")) <= privacy.ADDRESS_GRACE_SECONDS

    # Anonymous records stay for statistics, with their outcomes.
    for case_id, outcome in ((old, "referred_legal"), (current, "declined")):
        case = referrals.get(case_id)
        assert case.conversation_id == "" and case.transcript == [] and case.erased_at
        assert case.outcome == outcome and case.status == "closed"
        assert all("phrase" not in item for item in case.indicators)
    assert referrals.get(old).indicators == [{"name": "documents_confiscated", "message_index": 1}]
    assert referrals.open_case_id("c1") is None
    assert referrals.audit(current)[-1].action == "erased"

    # The other person's data is untouched.
    assert "someone else's words" in left and db.exists("rasa:tracker:c2")
    assert db.hget(conversations.key("c2"), "language") == "pt"


def test_erasure_is_refused_as_incomplete_when_rasa_still_has_the_messages(db: redis.Redis, settings) -> None:
    seed(db, "c1", NUMBER, SECRET_TEXT)
    # A tracker store configured with another prefix: deleting our keys does not reach it.
    store_tracker(db, "c1", [SECRET_TEXT], prefix="other:")
    rasa = rasa_reading(db, settings, prefix="other:")
    with pytest.raises(privacy.ErasureIncomplete):
        asyncio.run(privacy.erase_conversation(db, rasa, "c1", fernet_key=FERNET_KEY))


def test_erasure_still_happens_when_rasa_is_down(db: redis.Redis, settings) -> None:
    seed(db, "c1", NUMBER, SECRET_TEXT)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    rasa = RasaClient(settings, client=httpx.AsyncClient(transport=httpx.MockTransport(down)))
    asyncio.run(privacy.erase_conversation(db, rasa, "c1", fernet_key=FERNET_KEY))
    assert not db.exists("rasa:tracker:c1")
    assert SECRET_TEXT not in everything(db)


DAY = 86400.0


def test_purge_anonymises_old_closed_cases_and_forgets_quiet_conversations(db: redis.Redis) -> None:
    now = 1_700_000_000.0
    clock = {"t": now - 100 * DAY}
    referrals = Referrals(db, clock=lambda: clock["t"])
    for cid, number in (("quiet", NUMBER), ("active", OTHER_NUMBER), ("recent", "+258840000001"),
                        ("open", "+258840000002")):
        seed(db, cid, number, f"texto de {cid}")
        db.hset(conversations.key(cid), "last_inbound", str(now - 95 * DAY))
    db.hset(conversations.key("active"), "last_inbound", str(now - 1 * DAY))  # still writing to the bot

    quiet = referrals.open_case("quiet", priority="high", channel="sms", language="pt",
                                transcript=[(1.0, "person", "texto de quiet")]).case_id
    active = referrals.open_case("active", priority="request", channel="sms", language="pt",
                                 transcript=[(1.0, "person", "texto de active")]).case_id
    referrals.close(quiet, "ana", "referred_avrr")
    referrals.close(active, "ana", "information_given")
    clock["t"] = now - 10 * DAY
    recent = referrals.open_case("recent", priority="high", channel="sms", language="pt",
                                 transcript=[(1.0, "person", "texto de recent")]).case_id
    referrals.close(recent, "ana", "referred_health")
    still_open = referrals.open_case("open", priority="high", channel="sms", language="pt").case_id

    assert privacy.purge(db, 90 * DAY, now=now, fernet_key=FERNET_KEY) == 2

    left = everything(db)
    # The quiet conversation is gone everywhere; its case stays anonymous with the outcome.
    assert "texto de quiet" not in left and NUMBER not in left
    assert not db.exists("rasa:tracker:quiet") and not db.exists(conversations.key("quiet"))
    assert referrals.get(quiet).outcome == "referred_avrr" and referrals.get(quiet).conversation_id == ""
    # The active conversation keeps its tracker and number; only the old case is emptied.
    assert referrals.get(active).transcript == [] and db.exists("rasa:tracker:active")
    assert db.hget(conversations.key("active"), "address")
    # Within retention, or open: untouched.
    assert [m.text for m in referrals.get(recent).transcript] == ["texto de recent"]
    assert referrals.get(still_open).status == "waiting"
    # Running it again finds nothing new.
    assert privacy.purge(db, 90 * DAY, now=now, fernet_key=FERNET_KEY) == 0
