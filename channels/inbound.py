"""The inbound stream's entries: how the gateway appends one, at most once, in conversation order.

Besides the stream entry, each conversation has a list of its entry ids in arrival order
(`keys.order(cid)`). A worker answers an entry only when it is at the head of that list,
which keeps a conversation's messages in order across any number of worker processes, and
pops it in the same transaction that queues the replies, so an entry is answered once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
import redis.asyncio

from hotline import keys
from hotline.conversations import Channel
from hotline.keys import INBOUND_STREAM
from hotline.settings import Settings
from hotline.store import execute_replicated_async

SEEN_TTL = 2 * 24 * 3600  # Twilio retries a webhook for hours at most
MAXLEN = 1_000_000

# Dedup and append in one step: either both happen or neither, so a Redis failure between
# them can never mark a message as seen without storing it. A duplicate still writes (the
# seen key's expiry), so a WAIT after it covers the first delivery's append too, which may
# have been made on another connection, by a gateway that died before it was confirmed.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) return false end
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  return false
end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
if KEYS[2] ~= KEYS[1] then redis.call('SET', KEYS[2], id, 'EX', ARGV[1]) end
redis.call('RPUSH', KEYS[4], id)
return id
"""

_APPEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
redis.call('RPUSH', KEYS[2], id)
return id
"""


# Kept: tests and tools name them so.
order_key = keys.order
seen_key = keys.seen


@dataclass(frozen=True)
class InboundEntry:
    """What a worker gets: no phone number, only the id and the sealed address."""

    conversation_id: str
    sealed_address: str
    channel: Channel
    body: str
    received_at: float
    message_sid: str = ""
    media_count: int = 0
    truncated: bool = False

    def fields(self) -> dict[str, str]:
        return {
            "conversation_id": self.conversation_id,
            "address": self.sealed_address,
            "channel": self.channel,
            "body": self.body,
            "received_at": f"{self.received_at:.6f}",
            "message_sid": self.message_sid,
            "media": str(self.media_count),
            "truncated": "1" if self.truncated else "0",
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> InboundEntry:
        return cls(
            conversation_id=fields["conversation_id"],
            sealed_address=fields.get("address", ""),
            channel="whatsapp" if fields.get("channel") == "whatsapp" else "sms",
            body=fields.get("body", ""),
            received_at=float(fields.get("received_at") or time.time()),
            message_sid=fields.get("message_sid", ""),
            media_count=int(fields.get("media") or 0),
            truncated=fields.get("truncated") == "1",
        )


def _flatten(fields: dict[str, str]) -> list[str]:
    return [part for pair in fields.items() for part in pair]


class InboundQueue:
    """The gateway's side: append a message unless Twilio already delivered it.

    With `settings` asking for replicas (HOTLINE_REDIS_ACK_REPLICAS), the append, or the
    duplicate's sighting, is confirmed on them before `add` returns: the webhook is
    acknowledged only once a failover cannot lose the message (NotReplicated otherwise)."""

    def __init__(self, db: redis.asyncio.Redis, settings: Settings | None = None) -> None:
        self._db, self._settings = db, settings
        self._enqueue = db.register_script(_ENQUEUE)

    async def add(self, entry: InboundEntry, idempotency_token: str | None = None) -> str | None:
        """The new entry's id, or None for a duplicate (same MessageSid or idempotency token)."""
        sid_key = seen_key("sid", entry.message_sid)
        token_key = seen_key("token", idempotency_token) if idempotency_token else sid_key
        script_keys = [sid_key, token_key, INBOUND_STREAM, order_key(entry.conversation_id)]
        args = [SEEN_TTL, MAXLEN, *_flatten(entry.fields())]
        if self._settings is None or not self._settings.redis_ack_replicas:
            return await self._enqueue(keys=script_keys, args=args)
        async with self._db.pipeline(transaction=False) as pipe:
            await self._enqueue(keys=script_keys, args=args, client=pipe)
            (entry_id,) = await execute_replicated_async(pipe, self._settings)
        return entry_id


def append(db: redis.Redis, fields: dict[str, str]) -> str:
    """Append an entry without the duplicate check (an operator's replay from the dead letters)."""
    return db.eval(
        _APPEND, 2, INBOUND_STREAM, order_key(fields["conversation_id"]), MAXLEN, *_flatten(fields)
    )
