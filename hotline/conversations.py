"""Per-conversation state the gateway, workers, sender and referral queue share in Redis.

Keys (all keyed by the pseudonymous conversation id, never by number):
  hotline:conv:{cid}   hash: channel (sms|whatsapp), address (Fernet-sealed), language,
                       opted_out ("1" or absent), last_inbound (epoch seconds)
Streams:
  hotline:inbound      what the gateway accepted, for the workers
  hotline:outbound     what must be sent, for the sender: conversation_id, text, source
                       (bot|counsellor|system), optional case_id
"""

from __future__ import annotations

import time
from typing import Literal

import redis

INBOUND_STREAM = "hotline:inbound"
OUTBOUND_STREAM = "hotline:outbound"
DEAD_LETTER_STREAM = "hotline:dead"

Channel = Literal["sms", "whatsapp"]
Source = Literal["bot", "counsellor", "system"]


def key(conversation_id: str) -> str:
    return f"hotline:conv:{conversation_id}"


def remember(
    db: redis.Redis, conversation_id: str, *, channel: Channel, sealed_address: str
) -> None:
    """Record how to reach the person (sealed) each time they write."""
    pipe = db.pipeline(transaction=True)
    pipe.hset(
        key(conversation_id),
        mapping={"channel": channel, "address": sealed_address, "last_inbound": f"{time.time():.3f}"},
    )
    # An erasure leaves the key to expire after its confirmation is sent; a person who writes
    # again inside that grace period is a live conversation and must not vanish with it.
    pipe.persist(key(conversation_id))
    pipe.execute()


def state(db: redis.Redis, conversation_id: str) -> dict[str, str]:
    return db.hgetall(key(conversation_id))


def language(db: redis.Redis, conversation_id: str) -> str | None:
    return db.hget(key(conversation_id), "language")


def set_language(db: redis.Redis, conversation_id: str, value: str) -> None:
    db.hset(key(conversation_id), "language", value)


def queue_reply(
    db: redis.Redis | redis.client.Pipeline,
    conversation_id: str,
    text: str,
    *,
    source: Source,
    case_id: str | None = None,
) -> None:
    """Hand a text to the sender. Only replies and a counsellor's messages in an open
    case come through here: the hotline never texts a person first."""
    fields = {"conversation_id": conversation_id, "text": text, "source": source}
    if case_id:
        fields["case_id"] = case_id
    db.xadd(OUTBOUND_STREAM, fields, maxlen=1_000_000, approximate=True)
