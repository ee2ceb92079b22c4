"""A sender killed at the worst moment sends no reply twice: Twilio (the sandbox) has taken
the message, the sender has not heard back, and SIGKILL ends it there. Its replacement reads
Twilio's Messages list before sending a body whose outcome it cannot know.

The sender runs as `python -m channels.sender`, as `make run` starts it; the sandbox's slow
control holds Twilio's answer after the message is stored, which is the moment a crash loses
track of a message Twilio already has.
"""

from __future__ import annotations

import random
import re
import time

import httpx
import redis

from channels.sender import GROUP
from hotline import conversations, ids, keys, sms
from tests.channels.conftest import ChannelProcess, Phone, Servers, service_env, wait_for
from tests.conftest import FERNET_KEY, SECRET

RECONCILED = "recorded, not sent again"


def _slow(servers: Servers, seconds: float, count: int, skip: int = 0) -> None:
    httpx.post(
        f"{servers.sandbox_url}/sandbox/slow",
        json={"seconds": seconds, "count": count, "skip": skip},
        timeout=10,
    ).raise_for_status()


def _person(db: redis.Redis, phone: Phone) -> str:
    """A conversation the hotline can reply to, as the worker leaves it."""
    cid = ids.conversation_id(phone.address, SECRET)
    conversations.remember(
        db,
        cid,
        channel=phone.channel,  # type: ignore[arg-type]
        sealed_address=ids.seal(phone.address, FERNET_KEY),
    )
    return cid


def _all_sent(db: redis.Redis) -> bool:
    """Every reply handled: nothing new, nothing pending, nothing left on the stream."""
    try:
        groups = {g["name"]: g for g in db.xinfo_groups(keys.OUTBOUND_STREAM)}
    except redis.ResponseError:
        return False
    group = groups.get(GROUP)
    return (
        group is not None
        and group["pending"] == 0
        and not group.get("lag")
        and db.xlen(keys.OUTBOUND_STREAM) == 0
    )


def _parts(phone: Phone) -> list[str]:
    return [part for body in phone.received() for part in body.split("\n\n")]


def test_a_sender_killed_while_twilio_has_the_message_does_not_send_it_again(
    servers: Servers, db: redis.Redis, tmp_path
) -> None:
    env = service_env(servers.settings)
    phone = Phone(servers, "+258840009001")
    cid = _person(db, phone)
    _slow(servers, seconds=60, count=1)
    conversations.queue_reply(db, cid, "Ola. Pode contar comigo.", source="bot")
    sender = ChannelProcess("channels.sender", env, tmp_path).start()
    replacement = None
    try:
        # Twilio has it and the phone shows it; the sender is still waiting for the answer.
        assert wait_for(lambda: phone.received(), timeout=20), sender.output()
        sender.kill()
        replacement = ChannelProcess("channels.sender", env, tmp_path).start()
        assert wait_for(lambda: _all_sent(db), timeout=30), replacement.output()
        time.sleep(1)  # anything sent twice would be in the thread by now
        assert phone.received() == ["Ola. Pode contar comigo."]
        assert RECONCILED in replacement.output()
        # The message Twilio had is the one on record, with the delivery reports after it.
        sid = next(iter(db.scan_iter(keys.DELIVERY.glob())), "").split(":")[-1]
        assert wait_for(lambda: db.hget(keys.delivery(sid), "status") == "delivered")
        assert db.hget(keys.delivery(sid), "conversation_id") == cid
    finally:
        sender.kill()
        if replacement:
            replacement.kill()


def test_a_reply_queued_behind_one_twilio_has_is_not_joined_to_it_after_a_crash(
    servers: Servers, db: redis.Redis, tmp_path
) -> None:
    """The dead sender had taken a second reply while the first was at Twilio. The replacement
    takes both at once; joined, they would make a body Twilio's list does not hold, and the
    first would arrive twice."""
    env = service_env(servers.settings)
    phone = Phone(servers, "+258840009002")
    cid = _person(db, phone)
    _slow(servers, seconds=60, count=1)
    conversations.queue_reply(db, cid, "Ola. Pode contar comigo.", source="bot")
    sender = ChannelProcess("channels.sender", env, tmp_path).start()
    replacement = None
    try:
        assert wait_for(lambda: phone.received(), timeout=20), sender.output()
        conversations.queue_reply(db, cid, "Quer falar com um conselheiro?", source="bot")
        # The second reply is in the dead sender's hands too (read, not answered).
        assert wait_for(
            lambda: db.xpending(keys.OUTBOUND_STREAM, GROUP)["pending"] == 2, timeout=20
        ), sender.output()
        sender.kill()
        replacement = ChannelProcess("channels.sender", env, tmp_path).start()
        assert wait_for(lambda: _all_sent(db), timeout=30), replacement.output()
        time.sleep(1)  # anything sent twice would be in the thread by now
        assert _parts(phone) == ["Ola. Pode contar comigo.", "Quer falar com um conselheiro?"]
        assert RECONCILED in replacement.output()
    finally:
        sender.kill()
        if replacement:
            replacement.kill()


def test_a_long_reply_killed_after_its_first_part_goes_on_from_the_second(
    servers: Servers, db: redis.Redis, tmp_path
) -> None:
    """Three SMS: the first is answered, the second is taken but not answered, SIGKILL. The
    phone gets each part once and in order."""
    env = service_env(servers.settings)
    phone = Phone(servers, "+258840009002")
    cid = _person(db, phone)
    long = " ".join(f"Frase numero {n} da resposta." for n in range(120))
    bodies = sms.join_messages([long])
    assert len(bodies) == 3
    _slow(servers, seconds=60, count=1, skip=1)
    conversations.queue_reply(db, cid, long, source="bot")
    sender = ChannelProcess("channels.sender", env, tmp_path).start()
    replacement = None
    try:
        assert wait_for(lambda: len(phone.received()) == 2, timeout=20), sender.output()
        sender.kill()
        replacement = ChannelProcess("channels.sender", env, tmp_path).start()
        assert wait_for(lambda: _all_sent(db), timeout=30), replacement.output()
        time.sleep(1)
        assert phone.received() == bodies
        assert replacement.output().count(RECONCILED) == 1
    finally:
        sender.kill()
        if replacement:
            replacement.kill()


def test_replies_to_many_people_through_repeated_kills_arrive_exactly_once(
    servers: Servers, db: redis.Redis, tmp_path
) -> None:
    """150 replies to 30 phones, every create answered slowly, the sender SIGKILLed five
    times while requests are out: each reply arrives once, in order, none lost."""
    env = service_env(servers.settings)
    phones = [Phone(servers, f"+2588400091{i:02d}") for i in range(30)]
    cids = [_person(db, phone) for phone in phones]
    _slow(servers, seconds=0.4, count=100_000)
    expected: dict[str, list[str]] = {phone.number: [] for phone in phones}
    for round_ in range(5):
        for phone, cid in zip(phones, cids, strict=True):
            text = f"Resposta {round_} para {phone.number[-2:]}."
            expected[phone.number].append(text)
            conversations.queue_reply(db, cid, text, source="bot")
    rng = random.Random(14)
    kills, outputs = 0, []
    sender = ChannelProcess("channels.sender", env, tmp_path).start()
    started = time.monotonic()
    try:
        for _ in range(5):
            time.sleep(rng.uniform(1.5, 3.0))
            if _all_sent(db):
                break
            sender.kill()
            kills += 1
            sender = ChannelProcess("channels.sender", env, tmp_path).start()
        assert wait_for(lambda: _all_sent(db), timeout=120), sender.output()
        elapsed = time.monotonic() - started
        time.sleep(1)
        received = {phone.number: _parts(phone) for phone in phones}
        twice = sum(
            max(0, parts.count(text) - 1)
            for number, parts in received.items()
            for text in set(parts)
        )
        lost = sum(
            1 for number, texts in expected.items() for t in texts if t not in received[number]
        )
        log = (tmp_path / "channels.sender.log").read_text(errors="replace")
        outputs.append(log)
        reconciled = log.count(RECONCILED)
        print(
            f"\n150 replies, {kills} SIGKILLs, {reconciled} taken by Twilio before a kill and "
            f"found in its list, {twice} delivered twice, {lost} lost, {elapsed:.1f}s"
        )
        assert kills >= 3
        assert twice == 0 and lost == 0
        assert received == expected  # and each person's replies in order
        assert reconciled >= 1  # the kills did land with requests out
        assert not re.search(r"\+2588400091\d\d", log)  # no number in the sender's log
    finally:
        sender.kill()
