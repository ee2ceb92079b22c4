"""The record of every outgoing message and how far it got (`keys.delivery(MessageSid)`).

The sender writes the record when Twilio accepts (or refuses) a message, or when it never
sends it (opted out, no address, dead-lettered: `rejected-…`, `unsent-…` records, with a
`reason` or Twilio's `error_code`); Twilio's status callbacks move it forward. Records hold
the conversation id, never the number or the text. `attempt` names the outbound run that
sent it, so a dead letter replayed later reads as a new attempt.

A body that carries lines of a case's transcript is linked to them in
`keys.case_delivery(case_id)` (record id -> the lines' refs), and every record or callback
of a case is announced on the change stream (action `delivery`), so an open case page
reloads its transcript with the new status; referral.queue.Referrals.deliveries reads it.
"""

from __future__ import annotations

import json
import logging
import time

import redis
import redis.asyncio

from hotline import keys
from referral.queue import CHANGES_MAXLEN

log = logging.getLogger(__name__)

RECORD_TTL = 90 * 24 * 3600  # the same retention as closed cases
# Sorted set of record ids an operator should look at: `hotline undelivered` and the
# supervisor's /supervisor/undelivered list them and act on them (referral.failures).
UNDELIVERED = keys.UNDELIVERED_KEY

# Twilio's callbacks can arrive out of order ("sent" after "delivered"); a status only moves
# forward. failed/undelivered sit above sent: a carrier can fail a message it had accepted.
RANK = {
    "accepted": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "receiving": 4,
    "received": 4,
    "failed": 5,
    "undelivered": 5,
    "delivered": 6,
    "read": 7,
}
FAILED = ("failed", "undelivered", "rejected")

# KEYS: the record, the change stream. A record of a case tells its open consoles.
_ADVANCE = """
local ranks = cjson.decode(ARGV[5])
local current = redis.call('HGET', KEYS[1], 'status')
if current and (ranks[current] or 0) >= (ranks[ARGV[1]] or 0) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[3])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'error_code', ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
local case = redis.call('HGET', KEYS[1], 'case_id')
if case and case ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'case', case, 'action', 'delivery',
    'priority', '')
end
return 1
"""


record_key = keys.delivery


def record(db: redis.Redis | redis.client.Pipeline, record_id: str, **fields: str | None) -> None:
    """Write an outgoing message's record (the sender calls this once per body)."""
    now = f"{time.time():.3f}"
    values = {
        "created_at": now,
        "updated_at": now,
        **{k: v for k, v in fields.items() if v is not None},
    }
    status = values.pop("status", None)
    db.hset(record_key(record_id), mapping=values)
    if status is not None:
        # Twilio's first callback can come before the sender writes the record; the status
        # it brought is further than the one create() answered, and must stay.
        db.hsetnx(record_key(record_id), "status", status)
    db.expire(record_key(record_id), RECORD_TTL)
    if status in FAILED:
        db.zadd(UNDELIVERED, {record_id: time.time()})


def link(
    db: redis.Redis | redis.client.Pipeline, record_id: str, lines: dict[str, list[str]]
) -> None:
    """Link a record to the transcript lines its body carried (case id -> refs), and tell the
    cases' open consoles. Written once per record, so a retry writes the same again."""
    for case_id, refs in lines.items():
        db.hset(keys.case_delivery(case_id), record_id, " ".join(refs))
        db.xadd(
            keys.CHANGES_STREAM,
            {"case": case_id, "action": "delivery", "priority": ""},
            maxlen=CHANGES_MAXLEN,
            approximate=True,
        )


async def advance(
    db: redis.asyncio.Redis, message_sid: str, status: str, error_code: str = ""
) -> bool:
    """Apply a status callback; False when it is older news than what the record says."""
    moved = await db.eval(
        _ADVANCE,
        2,
        record_key(message_sid),
        keys.CHANGES_STREAM,
        status,
        error_code,
        f"{time.time():.3f}",
        RECORD_TTL,
        json.dumps(RANK),
        CHANGES_MAXLEN,
    )
    if moved and status in FAILED:
        await db.zadd(UNDELIVERED, {message_sid: time.time()})
        # An operator sees it in `hotline undelivered` and the supervisor's page; the text is
        # not kept, so nothing is re-sent blindly (a failed SMS is often a phone that is off):
        # a case's line is sent again only on an operator's word (referral.failures).
        log.warning(
            "message %s was not delivered: %s (Twilio error %s)",
            message_sid,
            status,
            error_code or "none",
        )
    return bool(moved)
