"""Per-conversation state the gateway, workers, sender and referral queue share in Redis.

All keyed by the pseudonymous conversation id, never by number (hotline.keys holds the names):
  keys.conversation(cid)   hash: channel (sms|whatsapp), address (Fernet-sealed), language,
                           opted_out ("1" or absent), last_inbound (epoch seconds)
  keys.INBOUND_STREAM      what the gateway accepted, for the workers
  keys.OUTBOUND_STREAM     what must be sent, for the sender: conversation_id, text, source
                           (bot|counsellor|system), optional case_id, and with it optional ref:
                           the transcript line (its `ref` field) whose delivery status the sender
                           links in keys.case_delivery(case_id)
"""

from __future__ import annotations

import time
from typing import Literal, TypeAlias

import redis

from hotline import keys

# Re-exported: the stream names have been imported from here since before the registry.
INBOUND_STREAM = keys.INBOUND_STREAM
OUTBOUND_STREAM = keys.OUTBOUND_STREAM
DEAD_LETTER_STREAM = keys.DEAD_LETTER_STREAM
OUTBOUND_MAXLEN = 1_000_000

Channel = Literal["sms", "whatsapp"]
Source = Literal["bot", "counsellor", "system"]

# A client or a pipeline: the same commands, applied now or with the rest of a transaction.
Writer: TypeAlias = "redis.Redis | redis.client.Pipeline"


def key(conversation_id: str) -> str:
    return keys.conversation(conversation_id)


def remember(
    db: Writer,
    conversation_id: str,
    *,
    channel: Channel,
    sealed_address: str,
    at: float | None = None,
) -> None:
    """Record how to reach the person (sealed) each time they write.

    Given a pipeline, the writes join it (the worker commits them with the message's answer).
    """
    at = time.time() if at is None else at
    own = not isinstance(db, redis.client.Pipeline)
    pipe = db.pipeline(transaction=True) if own else db
    pipe.hset(
        key(conversation_id),
        mapping={"channel": channel, "address": sealed_address, "last_inbound": f"{at:.3f}"},
    )
    # An erasure leaves the key to expire after its confirmation is sent; a person who writes
    # again inside that grace period is a live conversation and must not vanish with it.
    pipe.persist(key(conversation_id))
    if own:
        pipe.execute()


def state(db: redis.Redis, conversation_id: str) -> dict[str, str]:
    return db.hgetall(key(conversation_id))


def language(db: redis.Redis, conversation_id: str) -> str | None:
    return db.hget(key(conversation_id), "language")


def set_language(db: Writer, conversation_id: str, value: str) -> None:
    db.hset(key(conversation_id), "language", value)


def outbound_fields(
    conversation_id: str,
    text: str,
    *,
    source: Source,
    case_id: str | None = None,
    ref: str | None = None,
) -> dict[str, str]:
    """An outbound stream entry (the queue's reply and outgoing scripts write the same fields).

    `ref` names the case's transcript line the text is (referral.queue.record_outgoing makes
    both); it only means something with a `case_id`.
    """
    fields = {"conversation_id": conversation_id, "text": text, "source": source}
    if case_id:
        fields["case_id"] = case_id
        if ref:
            fields["ref"] = ref
    return fields


def queue_reply(
    db: Writer,
    conversation_id: str,
    text: str,
    *,
    source: Source,
    case_id: str | None = None,
    ref: str | None = None,
) -> None:
    """Hand a text to the sender. Only replies and a counsellor's messages in an open
    case come through here: the hotline never texts a person first.

    A text that belongs in a case's transcript goes through referral.queue.record_outgoing,
    which writes the line and this entry (with the line's `ref`) in one step, so the text's
    delivery status shows next to it.
    """
    fields = outbound_fields(conversation_id, text, source=source, case_id=case_id, ref=ref)
    db.xadd(OUTBOUND_STREAM, fields, maxlen=OUTBOUND_MAXLEN, approximate=True)
