"""An erasure reaches Twilio: the person's messages there are deleted through its REST API.

The real twilio client, the real sender and worker, the sandbox answering DELETE as Twilio
does; the only stand-in is Rasa (the erasure does not depend on what the bot says).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest
import redis

from channels.sender import Sender, twilio_client
from hotline import keys
from hotline.ids import conversation_id, seal
from referral import privacy
from tests.channels.conftest import FakeRasa, Servers, run_sender, run_worker, wait_for
from tests.conftest import FERNET_KEY, SECRET

PERSON = "+258841230077"
SOMEONE_ELSE = "+258849990011"


def text_from(servers: Servers, channel: str, number: str, body: str) -> None:
    """The person's phone texts the hotline through the sandbox, which keeps the message."""
    answer = httpx.post(
        servers.sandbox_url + "/phone/send",
        json={"channel": channel, "number": number, "body": body},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["webhook_status"] == 200, answer.text


def held_at_twilio(servers: Servers, number: str) -> list:
    """Every message Twilio lists to or from either identity of the number."""
    client = twilio_client(servers.settings)
    found = []
    for identity in (number, f"whatsapp:{number}"):
        found += client.messages.list(to=identity) + client.messages.list(from_=identity)
    return found


def thread(servers: Servers, channel: str, number: str) -> list[dict]:
    return httpx.post(
        servers.sandbox_url + "/phone/thread",
        json={"channel": channel, "number": number},
        timeout=10,
    ).json()["messages"]


def all_finished(servers: Servers, number: str) -> bool:
    return all(m.status in ("delivered", "received") for m in held_at_twilio(servers, number))


def erasure_pass(settings, later: float) -> int:
    """One pass of the sender's Twilio erasure, with the clock `later` seconds ahead."""
    sender = Sender(settings)
    sender.erasure.clock = lambda: time.time() + later
    try:
        return asyncio.run(sender.erasure.run_due())
    finally:
        sender.close()


def test_an_erasure_deletes_the_persons_messages_at_twilio_on_both_channels(
    servers: Servers, db: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    settings = servers.settings
    rasa = FakeRasa()
    for channel, number, body in (
        ("sms", PERSON, "Hello, I want to go back home"),
        ("whatsapp", PERSON, "Hello, I want to go back home"),
        ("sms", SOMEONE_ELSE, "Hello, I want to go back home"),
        ("sms", PERSON, "APAGAR"),
        ("sms", PERSON, "sim"),
    ):
        text_from(servers, channel, number, body)
        run_worker(settings, rasa)
        run_sender(settings)
    assert wait_for(lambda: all_finished(servers, PERSON))
    # Both channels, both directions: 3 texts and 3 replies by SMS, 1 and 1 by WhatsApp.
    assert len(held_at_twilio(servers, PERSON)) == 8
    assert len(thread(servers, "whatsapp", PERSON)) == 2
    queued = db.xrange(keys.TWILIO_ERASURES_STREAM)
    assert len(queued) == 1
    # Sealed, like every stored number, and nothing links it to the erased conversation.
    assert PERSON not in json.dumps(queued)
    assert conversation_id(PERSON, SECRET) not in json.dumps(queued)

    # Not before Twilio has had its minute with the last message (the confirmation).
    with caplog.at_level(logging.INFO):
        assert erasure_pass(settings, later=0) == 0
        assert len(held_at_twilio(servers, PERSON)) == 8
        assert erasure_pass(settings, later=privacy.TWILIO_FIRST_ASK_SECONDS + 1) == 1

    assert held_at_twilio(servers, PERSON) == []
    assert thread(servers, "sms", PERSON) == [] and thread(servers, "whatsapp", PERSON) == []
    assert len(held_at_twilio(servers, SOMEONE_ELSE)) == 2  # nobody else's
    assert db.xlen(keys.TWILIO_ERASURES_STREAM) == 0
    assert "8 message(s) deleted" in caplog.text
    assert PERSON not in caplog.text and PERSON[1:] not in caplog.text


def test_a_message_twilio_has_not_finished_with_is_deleted_on_a_later_pass(
    servers: Servers, db: redis.Redis
) -> None:
    settings = servers.settings
    client = twilio_client(settings)
    done = client.messages.create(to=PERSON, from_=settings.twilio_sms_from, body="Ola")
    on_its_way = client.messages.create(to=PERSON, from_=settings.twilio_sms_from, body="Ola 2")
    assert wait_for(lambda: all_finished(servers, PERSON))
    # Twilio's side: the second is still being delivered.
    stored = json.loads(db.get(keys.sandbox_message(on_its_way.sid)))
    db.set(keys.sandbox_message(on_its_way.sid), json.dumps(stored | {"status": "sending"}))
    privacy.ask_twilio_to_forget(db, seal(PERSON, FERNET_KEY))

    assert erasure_pass(settings, later=privacy.TWILIO_FIRST_ASK_SECONDS + 1) == 0
    assert [m.sid for m in held_at_twilio(servers, PERSON)] == [on_its_way.sid]
    [(_, entry)] = db.xrange(keys.TWILIO_ERASURES_STREAM)
    assert entry["asked"] == "1"
    # Asked again later, not at once.
    assert erasure_pass(settings, later=privacy.TWILIO_FIRST_ASK_SECONDS + 2) == 0
    assert len(held_at_twilio(servers, PERSON)) == 1

    db.set(keys.sandbox_message(on_its_way.sid), json.dumps(stored | {"status": "delivered"}))
    assert erasure_pass(settings, later=privacy.TWILIO_FIRST_ASK_SECONDS + 400) == 1
    assert held_at_twilio(servers, PERSON) == []
    assert db.xlen(keys.TWILIO_ERASURES_STREAM) == 0
    assert done.sid not in {m.sid for m in held_at_twilio(servers, PERSON)}


def test_the_sandbox_answers_delete_as_twilio_does(servers: Servers) -> None:
    from twilio.base.exceptions import TwilioRestException

    client = twilio_client(servers.settings)
    message = client.messages.create(to=PERSON, from_=servers.settings.twilio_sms_from, body="x")
    assert wait_for(lambda: client.messages(message.sid).fetch().status == "delivered")
    assert client.messages(message.sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        client.messages(message.sid).fetch()
    assert gone.value.code == 20404
    with pytest.raises(TwilioRestException) as again:
        client.messages(message.sid).delete()
    assert again.value.code == 20404
