"""Each outgoing line of a case says how far it got: the real sender, the sandbox standing in
for Twilio and its status callbacks through the real gateway, and the queue reading it back."""

from __future__ import annotations

import httpx
import pytest
import redis

from channels import dlq
from channels.sender import _bodies_of
from hotline import conversations, ids, keys, sms
from hotline.conversations import DEAD_LETTER_STREAM
from referral import privacy
from referral.queue import Delivery, Message, OptedOut, Referrals, record_outgoing
from tests.channels.conftest import Phone, Servers, run_sender, wait_for
from tests.conftest import FERNET_KEY

CID = "c" + "1" * 31


def _case(db: redis.Redis, phone: Phone, *, sealed: str | None = None) -> tuple[Referrals, str]:
    """A claimed case of the person on `phone`, as the hand-off and a claim leave it."""
    conversations.remember(
        db,
        CID,
        channel=phone.channel,  # type: ignore[arg-type]
        sealed_address=sealed or ids.seal(phone.address, FERNET_KEY),
    )
    referrals = Referrals(db)
    case_id = referrals.open_case(
        CID, priority="high", channel=phone.channel, language="pt", risk_level="high"
    ).case_id
    referrals.claim(case_id, "ana")
    return referrals, case_id


def _outgoing(referrals: Referrals, case_id: str) -> list[Message]:
    return [m for m in referrals.transcript(case_id) if m.outgoing]


def _settled(referrals: Referrals, case_id: str, *final: str) -> list[Delivery | None]:
    """The outgoing lines' statuses once each is one of `final` (callbacks come on their own)."""
    wait_for(
        lambda: all(
            m.delivery and m.delivery.status in final for m in _outgoing(referrals, case_id)
        ),
        timeout=10,
    )
    return [m.delivery for m in _outgoing(referrals, case_id)]


def _sandbox(servers: Servers, control: str, number: str) -> None:
    httpx.post(f"{servers.sandbox_url}/sandbox/{control}", json={"number": number}, timeout=10)


def test_a_counsellors_reply_goes_from_queued_to_delivered(
    servers: Servers, db: redis.Redis
) -> None:
    phone = Phone(servers, "+258840000701")
    referrals, case_id = _case(db, phone)
    referrals.reply(case_id, "ana", "Ola, sou a Ana. Esta em seguranca?")
    assert [m.delivery for m in _outgoing(referrals, case_id)] == [Delivery("queued")]
    before = db.xlen(keys.CHANGES_STREAM)

    run_sender(servers.settings)
    assert _settled(referrals, case_id, "delivered") == [Delivery("delivered")]
    assert phone.received() == ["Ola, sou a Ana. Esta em seguranca?"]
    # Each step was announced to the case's open consoles (the page reloads its transcript).
    changes = [f for _, f in db.xrange(keys.CHANGES_STREAM)][before:]
    assert {(f["case"], f["action"]) for f in changes} == {(case_id, "delivery")}
    assert len(changes) >= 2  # sent by the sender, then the callbacks


def test_the_bots_texts_in_an_open_case_carry_their_status_too(
    servers: Servers, db: redis.Redis
) -> None:
    """The router's texts and a counsellor's reply, joined into one SMS: each line is linked."""
    phone = Phone(servers, "+258840000702")
    referrals, case_id = _case(db, phone)
    with db.pipeline(transaction=True) as pipe:
        record_outgoing(pipe, case_id, "Uma pessoa tem a sua mensagem.", author="bot", at=1.0)
        pipe.execute()
    referrals.reply(case_id, "ana", "Ola, estou aqui.")

    run_sender(servers.settings)
    assert _settled(referrals, case_id, "delivered") == [Delivery("delivered")] * 2
    assert phone.received() == ["Uma pessoa tem a sua mensagem.\n\nOla, estou aqui."]


def test_a_phone_that_is_off_shows_as_failed_with_the_reason(
    servers: Servers, db: redis.Redis
) -> None:
    phone = Phone(servers, "+258840000703")
    _sandbox(servers, "unreachable", phone.number)
    referrals, case_id = _case(db, phone)
    referrals.reply(case_id, "ana", "Ola")
    run_sender(servers.settings)
    assert _settled(referrals, case_id, "failed") == [Delivery("failed", "twilio_30003")]


def test_a_long_reply_in_several_sms_fails_when_one_part_does(
    servers: Servers, db: redis.Redis
) -> None:
    phone = Phone(servers, "+258840000704")
    referrals, case_id = _case(db, phone)
    long = " ".join(f"Frase numero {n} do conselheiro." for n in range(200))
    referrals.reply(case_id, "ana", long)
    run_sender(servers.settings)
    assert _settled(referrals, case_id, "delivered") == [Delivery("delivered")]
    assert len(phone.received()) == len(sms.join_messages([long])) > 1

    # The same again to a phone now off: every part ends undelivered, the line failed.
    _sandbox(servers, "unreachable", phone.number)
    referrals.reply(case_id, "ana", long)
    run_sender(servers.settings)
    statuses = _settled(referrals, case_id, "delivered", "failed")
    assert statuses == [Delivery("delivered"), Delivery("failed", "twilio_30003")]


def test_a_person_who_opted_out_at_twilio_shows_as_failed_and_further_replies_are_refused(
    servers: Servers, db: redis.Redis
) -> None:
    phone = Phone(servers, "+258840000705")
    _sandbox(servers, "optout", phone.number)
    referrals, case_id = _case(db, phone)
    referrals.reply(case_id, "ana", "Ola")
    run_sender(servers.settings)
    assert _settled(referrals, case_id, "failed") == [Delivery("failed", "twilio_21610")]
    # The sender marked the conversation: the console now refuses before anything is queued.
    with pytest.raises(OptedOut):
        referrals.reply(case_id, "ana", "Ola de novo")


def test_a_bot_text_to_a_person_who_texted_stop_is_not_sent_and_says_why(
    servers: Servers, db: redis.Redis
) -> None:
    phone = Phone(servers, "+258840000706")
    referrals, case_id = _case(db, phone)
    db.hset(keys.conversation(CID), "opted_out", "1")
    with db.pipeline(transaction=True) as pipe:
        record_outgoing(pipe, case_id, "Ainda esta ai?", author="bot", at=1.0)
        # The opt-out confirmation is the one text that still reaches them.
        record_outgoing(pipe, case_id, "Nao recebera mais mensagens.", author="system", at=2.0)
        pipe.execute()
    run_sender(servers.settings)
    assert _settled(referrals, case_id, "failed", "delivered") == [
        Delivery("failed", "opted_out"),
        Delivery("delivered"),
    ]
    assert phone.received() == ["Nao recebera mais mensagens."]


def test_a_dead_lettered_reply_shows_as_failed_until_a_replay_delivers_it(
    servers: Servers, db: redis.Redis
) -> None:
    phone = Phone(servers, "+258840000707")
    referrals, case_id = _case(db, phone, sealed="not a sealed address")
    referrals.reply(case_id, "ana", "Ola")
    run_sender(servers.settings)
    assert [m.delivery for m in _outgoing(referrals, case_id)] == [
        Delivery("failed", "dead_letter")
    ]
    assert db.xlen(DEAD_LETTER_STREAM) == 1

    # The operator repairs the address and replays: the newest attempt is what the line says.
    conversations.remember(
        db, CID, channel="sms", sealed_address=ids.seal(phone.address, FERNET_KEY)
    )
    assert dlq.replay(db) == 1
    run_sender(servers.settings)
    assert _settled(referrals, case_id, "delivered") == [Delivery("delivered")]


def test_lines_without_an_address_fail_with_the_reason(db: redis.Redis, servers: Servers) -> None:
    referrals = Referrals(db)
    case_id = referrals.open_case(CID, priority="high", channel="sms", language="pt").case_id
    with db.pipeline(transaction=True) as pipe:
        record_outgoing(pipe, case_id, "Ola", author="bot", at=1.0, conversation_id=CID)
        pipe.execute()
    run_sender(servers.settings)
    assert [m.delivery for m in _outgoing(referrals, case_id)] == [Delivery("failed", "no_address")]


@pytest.mark.parametrize(
    "texts",
    [
        ["one"],
        ["one", "two", "three"],
        ["short", "x" * 2000, "after"],
        ["é" * 700, "short"],
        ["", "alone"],
        ["a" * 1500, "b" * 1500],
    ],
    ids=["one", "joined", "long in the middle", "ucs2 overflow", "empty first", "two long"],
)
def test_each_text_is_linked_to_the_bodies_that_carry_it(texts: list[str]) -> None:
    bodies = sms.join_messages(texts)
    carried = _bodies_of(texts)
    assert len(carried) == len(texts)
    for text, at in zip(texts, carried, strict=True):
        if not text.strip():
            assert not at
            continue
        assert at and at.stop <= len(bodies)
        # The text's words are in those bodies, in order, and its first words in the first.
        assert text.split()[0][:20] in bodies[at.start]
        assert (
            "".join(bodies[i] for i in at)
            .replace("\n", "")
            .replace(" ", "")
            .find(text.replace(" ", "")[-20:])
            >= 0
        )
    # Every body carries at least one text.
    assert set().union(*(set(at) for at in carried)) == set(range(len(bodies)))


def test_erasing_the_case_takes_its_delivery_links_with_it(
    servers: Servers, db: redis.Redis
) -> None:
    """The links are a key of the case (keys.CASE_DELIVERY): erasure and retention reach them."""
    phone = Phone(servers, "+258840000708")
    referrals, case_id = _case(db, phone)
    referrals.reply(case_id, "ana", "Ola")
    run_sender(servers.settings)
    assert db.exists(keys.case_delivery(case_id))
    referrals.close(case_id, "ana", "information_given")
    privacy.anonymise_case(db, case_id)
    assert not db.exists(keys.case_delivery(case_id))
    assert not db.exists(keys.case_messages(case_id))
