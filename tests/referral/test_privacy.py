"""Erasure on request and purging after retention: no text and no number is left behind."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
import redis

from hotline import conversations, ids, keys
from hotline.rasa import RasaClient
from referral import privacy
from referral.queue import Referrals
from tests.conftest import FERNET_KEY, SECRET

NUMBER = "+258841234567"
OTHER_NUMBER = "+258827654321"
SECRET_TEXT = "o patrao guardou o meu passaporte"


def rasa_reading(db: redis.Redis, settings, prefix: str = keys.tracker("")) -> RasaClient:
    """A Rasa whose tracker store is this Redis, as in production (endpoints.yml)."""

    def handler(request: httpx.Request) -> httpx.Response:
        cid = request.url.path.split("/")[2]
        stored = db.get(prefix + cid)
        events = json.loads(stored)["events"] if stored else []
        return httpx.Response(200, json={"sender_id": cid, "events": events})

    return RasaClient(settings, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def store_tracker(
    db: redis.Redis, cid: str, texts: list[str], prefix: str = keys.tracker("")
) -> None:
    events = [{"event": "user", "text": t, "timestamp": 1.0 + i} for i, t in enumerate(texts)]
    db.set(prefix + cid, json.dumps({"sender_id": cid, "events": events}))


def seed(db: redis.Redis, cid: str, number: str, text: str) -> None:
    conversations.remember(
        db, cid, channel="whatsapp", sealed_address=ids.seal(f"whatsapp:{number}", FERNET_KEY)
    )
    conversations.set_language(db, cid, "pt")
    store_tracker(db, cid, ["ola", text])
    # What the gateway and worker leave in the streams (the gateway has the raw address).
    db.xadd(
        conversations.INBOUND_STREAM, {"from": f"whatsapp:{number}", "body": text, "sid": "SM1"}
    )
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
            parts.append(
                json.dumps(sorted(db.smembers(key) if kind == "set" else db.zrange(key, 0, -1)))
            )
    return "\n".join(parts)


def test_erasure_on_request_leaves_no_text_and_no_number(db: redis.Redis, settings) -> None:
    seed(db, "c1", NUMBER, SECRET_TEXT)
    seed(db, "c2", OTHER_NUMBER, "someone else's words")
    referrals = Referrals(db)
    old = referrals.open_case(
        "c1",
        priority="high",
        channel="whatsapp",
        language="pt",
        risk_level="high",
        indicators=[
            {
                "name": "documents_confiscated",
                "message_index": 1,
                "phrase": "guardou o meu passaporte",
            }
        ],
        consent="given",
        transcript=[(1.0, "person", SECRET_TEXT)],
    ).case_id
    referrals.claim(old, "ana")
    referrals.reply(old, "ana", "Onde está agora?")
    referrals.close(old, "ana", "referred_legal", note="client in Limpopo")
    current = referrals.open_case(
        "c1",
        priority="request",
        channel="whatsapp",
        language="pt",
        consent="requested",
        transcript=[(5.0, "person", "quero falar com alguem")],
    ).case_id
    referrals.append_message(current, text="estou em Polokwane")
    # The sender has already sent the reply; the confirmation of erasure is still to send.
    db.xgroup_create(conversations.OUTBOUND_STREAM, "senders", id="0")
    db.xreadgroup("senders", "s1", {conversations.OUTBOUND_STREAM: ">"})
    for entry_id, _ in db.xrange(conversations.OUTBOUND_STREAM):
        db.xack(conversations.OUTBOUND_STREAM, "senders", entry_id)
    conversations.queue_reply(db, "c1", "Os seus dados foram apagados.", source="system")

    result = asyncio.run(
        privacy.erase_conversation(db, rasa_reading(db, settings), "c1", fernet_key=FERNET_KEY)
    )

    assert result.cases == 2 and result.tracker_deleted
    left = everything(db)
    for words in (
        SECRET_TEXT,
        "guardou o meu passaporte",
        "Onde está agora?",
        "client in Limpopo",
        "estou em Polokwane",
        "quero falar com alguem",
        NUMBER,
    ):
        assert words not in left
    # The confirmation still goes out: the sender has not handled it yet.
    assert [f["text"] for _, f in db.xrange(conversations.OUTBOUND_STREAM)] == [
        "Os seus dados foram apagados."
    ]
    db.delete(conversations.OUTBOUND_STREAM)
    # Besides it, only the sealed number's short grace mentions the conversation.
    # (as a whole token: sealed numbers are random base64 that may contain the letters "c1")
    mentions = re.findall(r"(?<![A-Za-z0-9_=-])c1(?![A-Za-z0-9_=-])", everything(db))
    assert mentions == ["c1"], "only the key keys.conversation('c1') may name the conversation"
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
    assert "someone else's words" in left and db.exists(keys.tracker("c2"))
    assert db.hget(conversations.key("c2"), "language") == "pt"


def test_erasure_is_refused_as_incomplete_when_rasa_still_has_the_messages(
    db: redis.Redis, settings
) -> None:
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
    assert not db.exists(keys.tracker("c1"))
    assert SECRET_TEXT not in everything(db)


def test_an_erasure_asked_by_sms_reaches_what_the_number_wrote_on_whatsapp(
    db: redis.Redis, settings
) -> None:
    """One number is one conversation: APAGAR by SMS leaves nothing of its WhatsApp messages."""
    cid = ids.conversation_id(NUMBER, SECRET)
    assert ids.conversation_id(f"whatsapp:{NUMBER}", SECRET) == cid
    # First on WhatsApp, with a case, then by SMS: each message as the gateway stores it.
    sealed = {}
    messages: list[tuple[conversations.Channel, str, str]] = [
        ("whatsapp", f"whatsapp:{NUMBER}", "escrevo pelo whatsapp do meu primo"),
        ("sms", NUMBER, "agora escrevo por sms"),
    ]
    for channel, address, text in messages:
        sealed[channel] = ids.seal(address, FERNET_KEY)
        conversations.remember(db, cid, channel=channel, sealed_address=sealed[channel])
        db.xadd(
            conversations.INBOUND_STREAM,
            {"conversation_id": cid, "address": sealed[channel], "channel": channel, "body": text},
        )
    store_tracker(db, cid, ["escrevo pelo whatsapp do meu primo", "agora escrevo por sms"])
    Referrals(db).open_case(
        cid,
        priority="high",
        channel="whatsapp",
        language="pt",
        transcript=[(1.0, "person", "escrevo pelo whatsapp do meu primo")],
    )
    # Replies go where the person last wrote from.
    assert conversations.state(db, cid)["channel"] == "sms"

    asyncio.run(
        privacy.erase_conversation(db, rasa_reading(db, settings), cid, fernet_key=FERNET_KEY)
    )

    left = everything(db)
    for words in ("escrevo pelo whatsapp", "agora escrevo por sms", NUMBER, sealed["whatsapp"]):
        assert words not in left
    assert not db.exists(keys.tracker(cid)) and Referrals(db).cases_of(cid) == []
    # The confirmation goes back by SMS, where the request came from.
    assert db.hgetall(keys.conversation(cid)) == {"channel": "sms", "address": sealed["sms"]}


DAY = 86400.0


def test_purge_anonymises_old_closed_cases_and_forgets_quiet_conversations(db: redis.Redis) -> None:
    now = 1_700_000_000.0
    clock = {"t": now - 100 * DAY}
    referrals = Referrals(db, clock=lambda: clock["t"])
    for cid, number in (
        ("quiet", NUMBER),
        ("active", OTHER_NUMBER),
        ("recent", "+258840000001"),
        ("open", "+258840000002"),
    ):
        seed(db, cid, number, f"texto de {cid}")
        db.hset(conversations.key(cid), "last_inbound", str(now - 95 * DAY))
    db.hset(
        conversations.key("active"), "last_inbound", str(now - 1 * DAY)
    )  # still writing to the bot

    quiet = referrals.open_case(
        "quiet",
        priority="high",
        channel="sms",
        language="pt",
        transcript=[(1.0, "person", "texto de quiet")],
    ).case_id
    active = referrals.open_case(
        "active",
        priority="request",
        channel="sms",
        language="pt",
        transcript=[(1.0, "person", "texto de active")],
    ).case_id
    referrals.close(quiet, "ana", "referred_avrr")
    referrals.close(active, "ana", "information_given")
    clock["t"] = now - 10 * DAY
    recent = referrals.open_case(
        "recent",
        priority="high",
        channel="sms",
        language="pt",
        transcript=[(1.0, "person", "texto de recent")],
    ).case_id
    referrals.close(recent, "ana", "referred_health")
    still_open = referrals.open_case("open", priority="high", channel="sms", language="pt").case_id

    assert privacy.purge(db, 90 * DAY, now=now, fernet_key=FERNET_KEY) == 2

    left = everything(db)
    # The quiet conversation is gone everywhere; its case stays anonymous with the outcome.
    assert "texto de quiet" not in left and NUMBER not in left
    assert not db.exists(keys.tracker("quiet")) and not db.exists(conversations.key("quiet"))
    assert (
        referrals.get(quiet).outcome == "referred_avrr"
        and referrals.get(quiet).conversation_id == ""
    )
    # The active conversation keeps its tracker and number; only the old case is emptied.
    assert referrals.get(active).transcript == [] and db.exists(keys.tracker("active"))
    assert db.hget(conversations.key("active"), "address")
    # Within retention, or open: untouched.
    assert [m.text for m in referrals.get(recent).transcript] == ["texto de recent"]
    assert referrals.get(still_open).status == "waiting"
    # Running it again finds nothing new.
    assert privacy.purge(db, 90 * DAY, now=now, fernet_key=FERNET_KEY) == 0


# ---------------------------------------------------------------- generic over the key registry


def words_of(cid: str) -> str:
    return f"o que {cid} escreveu"


def _write(db: redis.Redis, family: keys.KeyFamily, key: str, cid: str) -> None:
    """One key of the family, holding the conversation's id and a text of the person's."""
    text = words_of(cid)
    values = {"conversation_id": cid, "text": text}
    if family.kind == "hash":
        db.hset(key, mapping=values)
    elif family.kind == "stream":
        db.xadd(key, values)
    elif family.kind == "string":
        db.set(key, text)
    elif family.kind == "set":
        db.sadd(key, text)
    elif family.kind == "zset":
        db.zadd(key, {text: 1.0})
    elif family.kind == "list":
        db.rpush(key, text)
    else:
        raise AssertionError(f"no way to write a {family.kind} for {family.name}")


def _seed_every_reached_family(db: redis.Redis, cid: str, case_id: str, *, skip=()) -> list[tuple]:
    """A key of every family an erasure reaches, for this conversation and its case."""
    written = []
    for family in keys.FAMILIES.values():
        if family.erasure is keys.Erasure.NONE or family in skip:
            continue
        if family.erasure is keys.Erasure.GRACE:
            key = family.key(conversation=cid)
            db.hset(key, "language", "pt")  # beside the sealed address seed() remembered
        elif family.scope == "conversation":
            key = family.key(conversation=cid)
            if not db.exists(key):
                _write(db, family, key, cid)
        elif family.scope == "case":
            key = family.key(case=case_id)
            if not db.exists(key):
                _write(db, family, key, cid)
        elif family.erasure is keys.Erasure.FIELD:
            key = family.key(**dict.fromkeys(family.parts, f"{cid}-record"))
            _write(db, family, key, cid)
        else:
            key = family.pattern
            _write(db, family, key, cid)
        written.append((family, key))
    return written


def _left_of(db: redis.Redis, cid: str, written: list[tuple], *, grace: bool) -> list[str]:
    """What of the conversation is still there, by family."""
    left = []
    for family, key in written:
        if family.erasure is keys.Erasure.GRACE:
            fields = db.hgetall(key)
            if grace and not (
                set(fields) <= {"address", "channel"}
                and 0 < db.ttl(key) <= privacy.ADDRESS_GRACE_SECONDS
            ):
                left.append(family.name)
            if not grace and fields:
                left.append(family.name)
        elif family.erasure is keys.Erasure.ENTRIES:
            if any(f.get("conversation_id") == cid for _, f in db.xrange(key)):
                left.append(family.name)
        elif family.erasure is keys.Erasure.ANONYMISE:
            if db.hget(key, "conversation_id"):
                left.append(family.name)
        elif db.exists(key):
            left.append(family.name)
    return left


def test_erasure_reaches_a_key_of_every_family_the_registry_marks_personal(
    db: redis.Redis, settings
) -> None:
    """Generic over hotline.keys: a family registered as personal is erased, or this fails."""
    seed(db, "c1", NUMBER, SECRET_TEXT)
    seed(db, "c2", OTHER_NUMBER, "someone else's words")
    referrals = Referrals(db)
    case_id = referrals.open_case(
        "c1",
        priority="high",
        channel="whatsapp",
        language="pt",
        transcript=[(1.0, "person", SECRET_TEXT)],
    ).case_id
    other_case = referrals.open_case("c2", priority="high", channel="sms", language="pt").case_id
    written = _seed_every_reached_family(db, "c1", case_id)
    others = _seed_every_reached_family(db, "c2", other_case)
    assert {family for family, _ in written} >= set(keys.personal_families())

    asyncio.run(
        privacy.erase_conversation(db, rasa_reading(db, settings), "c1", fernet_key=FERNET_KEY)
    )

    assert _left_of(db, "c1", written, grace=True) == []
    assert SECRET_TEXT not in everything(db) and words_of("c1") not in everything(db)
    # Another person's keys of the same families are all still there.
    assert _left_of(db, "c2", others, grace=True) == [family.name for family, _ in others]


def test_purge_reaches_a_key_of_every_personal_family_of_a_quiet_conversation(
    db: redis.Redis,
) -> None:
    now = 1_700_000_000.0
    seed(db, "quiet", NUMBER, SECRET_TEXT)
    db.hset(keys.conversation("quiet"), "last_inbound", str(now - 200 * DAY))
    referrals = Referrals(db, clock=lambda: now - 100 * DAY)
    case_id = referrals.open_case(
        "quiet",
        priority="high",
        channel="sms",
        language="pt",
        transcript=[(1.0, "person", SECRET_TEXT)],
    ).case_id
    referrals.close(case_id, "ana", "referred_avrr")
    # A quiet conversation has no open case (one with an open case is not quiet).
    written = _seed_every_reached_family(db, "quiet", case_id, skip=(keys.OPEN_CASE,))

    assert privacy.purge(db, 90 * DAY, now=now, fernet_key=FERNET_KEY) == 1

    assert _left_of(db, "quiet", written, grace=False) == []
    left = everything(db)
    assert SECRET_TEXT not in left and words_of("quiet") not in left and NUMBER not in left
    assert referrals.get(case_id).outcome == "referred_avrr"


# ---------------------------------------------------------------- retention for everyone

_CASE_ONLY = tuple(
    f for f in keys.FAMILIES.values() if f.scope == "case" or f is keys.CONVERSATION_CASES
)


def test_purge_forgets_a_quiet_conversation_that_never_became_a_case(db: redis.Redis) -> None:
    """Most conversations never reach a counsellor; retention reaches them all the same."""
    now = 1_700_000_000.0
    written = {}
    for cid, number, last in (
        ("quiet", NUMBER, now - 91 * DAY),
        ("recent", OTHER_NUMBER, now - 89 * DAY),
    ):
        seed(db, cid, number, words_of(cid))
        db.hset(keys.conversation(cid), "last_inbound", str(last))
        # A key of every family erasure reaches (tracker, dead letter, delivery record, ...),
        # but no case: an open one would hold the conversation back, and there is none.
        written[cid] = _seed_every_reached_family(
            db, cid, "no-case", skip=(*_CASE_ONLY, keys.OPEN_CASE)
        )
    assert {f for f, _ in written["quiet"]} >= {
        f for f in keys.personal_families() if f not in _CASE_ONLY and f is not keys.OPEN_CASE
    }

    assert privacy.purge(db, 90 * DAY, now=now, fernet_key=FERNET_KEY) == 0

    assert _left_of(db, "quiet", written["quiet"], grace=False) == []
    left = everything(db)
    assert words_of("quiet") not in left and NUMBER not in left
    assert not [key for key in db.scan_iter() if "quiet" in key]
    # Inside retention: every key is still there.
    assert _left_of(db, "recent", written["recent"], grace=False) == [
        family.name for family, _ in written["recent"]
    ]
    assert db.hget(keys.conversation("recent"), "address")


def test_purge_forgets_a_dead_letter_whose_conversation_never_got_a_state(
    db: redis.Redis,
) -> None:
    """A first message that kept failing is dead-lettered before any state is written."""
    now = 1_700_000_000.0
    for cid, text, failed_at in (
        ("lost", "estou presa numa machamba em Limpopo", now - 200 * DAY),
        ("fresh", "quero voltar a Maputo este mes", now - 1 * DAY),
    ):
        db.xadd(
            keys.DEAD_LETTER_STREAM,
            {"conversation_id": cid, "body": text, "failed_at": f"{failed_at:.3f}"},
        )
    assert not db.exists(keys.conversation("lost"))

    privacy.purge(db, 90 * DAY, now=now, fernet_key=FERNET_KEY)

    assert [f["conversation_id"] for _, f in db.xrange(keys.DEAD_LETTER_STREAM)] == ["fresh"]
    assert "machamba" not in everything(db)


def test_purge_never_touches_a_conversation_with_an_open_case(db: redis.Redis) -> None:
    now = 1_700_000_000.0
    referrals = Referrals(db, clock=lambda: now - 200 * DAY)
    for cid, number in (("waiting", NUMBER), ("claimed", OTHER_NUMBER)):
        seed(db, cid, number, words_of(cid))
        db.hset(keys.conversation(cid), "last_inbound", str(now - 200 * DAY))
        case_id = referrals.open_case(
            cid,
            priority="high",
            channel="sms",
            language="pt",
            transcript=[(1.0, "person", words_of(cid))],
        ).case_id
        if cid == "claimed":
            referrals.claim(case_id, "ana")

    assert privacy.purge(db, 90 * DAY, now=now, fernet_key=FERNET_KEY) == 0

    for cid in ("waiting", "claimed"):
        assert db.exists(keys.tracker(cid)) and db.hget(keys.conversation(cid), "address")
        case = referrals.get(referrals.open_case_id(cid) or "")
        assert case.is_open and [m.text for m in case.transcript] == [words_of(cid)]


def test_purge_leaves_an_erasure_in_its_grace_alone(db: redis.Redis, settings) -> None:
    """The sealed number kept to confirm an erasure expires by itself; the purge lets it be."""
    seed(db, "c1", NUMBER, SECRET_TEXT)
    asyncio.run(
        privacy.erase_conversation(db, rasa_reading(db, settings), "c1", fernet_key=FERNET_KEY)
    )
    privacy.purge(db, 90 * DAY, fernet_key=FERNET_KEY)
    assert set(db.hgetall(keys.conversation("c1"))) == {"channel", "address"}


def test_an_erasure_on_an_open_case_alerts_the_consoles_and_keeps_a_safety_record(
    db: redis.Redis, settings
) -> None:
    """Whoever holds the phone can send DELETE then YES: the case is not closed silently."""
    referrals = Referrals(db)
    case_id = referrals.open_case(
        "c1",
        priority="high",
        channel="sms",
        language="pt",
        risk_level="high",
        indicators=[{"name": "documents_confiscated", "message_index": 0, "phrase": "passaporte"}],
        transcript=[(1.0, "person", SECRET_TEXT)],
    ).case_id
    referrals.claim(case_id, "ana")
    since = db.xrevrange(keys.CHANGES_STREAM, count=1)[0][0]

    asyncio.run(
        privacy.erase_conversation(db, rasa_reading(db, settings), "c1", fernet_key=FERNET_KEY)
    )

    changes = [f for _, f in db.xrange(keys.CHANGES_STREAM, min=f"({since}")]
    assert {"case": case_id, "action": "erased_while_open", "priority": "high"} in changes
    record = referrals.get(case_id)
    assert record.status == "closed" and record.erased_at
    assert (record.priority, record.risk_level) == ("high", "high")
    assert [i["name"] for i in record.indicators] == ["documents_confiscated"]
    audit = {e.action: e for e in referrals.audit(case_id)}
    assert audit["erased_while_open"].detail == {
        "priority": "high",
        "risk_level": "high",
        "status": "claimed",
        "claimed_by": "ana",
    }
    assert SECRET_TEXT not in everything(db)
