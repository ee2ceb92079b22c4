"""What the channels remember about a conversation between messages."""

from __future__ import annotations

import redis

from hotline import conversations
from referral.privacy import ADDRESS_GRACE_SECONDS, _forget_conversation


def test_writing_again_after_an_erasure_keeps_the_new_conversation(db: redis.Redis) -> None:
    cid = "c" + "1" * 31
    conversations.remember(db, cid, channel="sms", sealed_address="sealed-1")
    conversations.set_language(db, cid, "sw")
    _forget_conversation(db, cid)  # erased: the number stays only for the confirmation
    assert 0 < db.ttl(conversations.key(cid)) <= ADDRESS_GRACE_SECONDS
    assert conversations.language(db, cid) is None

    conversations.remember(db, cid, channel="sms", sealed_address="sealed-2")

    assert db.ttl(conversations.key(cid)) == -1, (
        "the live conversation would expire with the erased one"
    )
    assert conversations.state(db, cid)["address"] == "sealed-2"
