"""What did not reach a person: undelivered replies and dead letters, as an operator acts on them.

`hotline undelivered` and the supervisor's page (/supervisor/undelivered) read and act
through this module. Nothing in what it returns is a phone number or a message text: a
failure is named by its record or entry id, the conversation id and the case id, with the
reason as a code (Twilio's error code, or the sender's own reason).

- An undelivered reply is a delivery record in keys.UNDELIVERED_KEY (channels.delivery puts
  it there: refused by Twilio, or failed/undelivered in a status callback). The text of a
  sent reply is not kept, so only a line of a case's transcript can be sent again (its text
  is in the transcript), one at a time on an operator's word, never to a person who opted
  out or a number Twilio says cannot receive. Dismissing takes it off the list.
- A dead letter (keys.DEAD_LETTER_STREAM) is an entry that kept failing in the worker or the
  sender; it goes back on the stream it came from. The sender never sends to a person who
  opted out since, so replaying one is always safe.

It lives in referral, below channels, because the console (referral.console) reads it too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from hotline import conversations, keys

log = logging.getLogger(__name__)

# Twilio's answers that say this number will not receive a resend either.
OPTED_OUT_CODES = {"21610"}
CANNOT_RECEIVE_CODES = {"21211", "21214", "21612", "21614", "30006", "63003", "63024"}

# Why an undelivered reply cannot be sent again (words in the console's catalogue).
Unreplayable = str  # opted_out | cannot_receive | text_not_kept

# Added when an entry is dead-lettered; dropped again when it is replayed.
_DEAD_META = ("origin", "original_id", "error", "failed_at", "failures")
_AUTHOR_SOURCE = {"counsellor": "counsellor", "bot": "bot", "system": "system"}


class NotFound(LookupError):
    """No such undelivered reply or dead letter (any more: someone may have acted first)."""


class NotReplayable(ValueError):
    def __init__(self, reason: Unreplayable) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Undelivered:
    id: str  # the delivery record (a MessageSid, or rejected-<entry>)
    at: float  # when it was found undelivered
    status: str  # failed, undelivered (Twilio's callback) or rejected (refused at once)
    error_code: str  # Twilio's error code, '' when it gave none
    conversation_id: str
    case_id: str  # '' for a reply outside a case
    channel: str
    source: str  # bot, counsellor, system
    not_replayable: Unreplayable | None  # None: an operator may send it again

    @property
    def reason(self) -> str:
        """The failure as a code: twilio_<code>, or the status when Twilio gave no code."""
        return f"twilio_{self.error_code}" if self.error_code.isdigit() else self.status


@dataclass(frozen=True)
class DeadLetter:
    id: str
    at: float  # when it was dead-lettered (its stream id's time)
    origin: str  # inbound or outbound
    error: str  # the failure's kind and place, never its message (channels.consumer.where)
    failed_at: str
    failures: str
    conversation_id: str
    case_id: str
    channel: str
    source: str


# ---------------------------------------------------------------- undelivered replies


def _why_not(record: dict[str, str], state: dict[str, str], refs: str) -> Unreplayable | None:
    code = record.get("error_code", "")
    if code in OPTED_OUT_CODES or state.get("opted_out") == "1":
        return "opted_out"
    if code in CANNOT_RECEIVE_CODES:
        return "cannot_receive"
    if not record.get("case_id") or not refs:
        return "text_not_kept"  # a reply outside a case: what was said is not stored
    return None


def list_undelivered(db: redis.Redis, limit: int = 500) -> list[Undelivered]:
    """The undelivered replies, newest first. Records past their retention leave the list."""
    found = db.zrevrange(keys.UNDELIVERED_KEY, 0, limit - 1, withscores=True)
    if not found:
        return []
    with db.pipeline(transaction=False) as pipe:
        for record_id, _ in found:
            pipe.hgetall(keys.delivery(record_id))
        records = pipe.execute()
    with db.pipeline(transaction=False) as pipe:
        for record in records:
            pipe.hgetall(keys.conversation(record.get("conversation_id", "")))
        states = pipe.execute()
    with db.pipeline(transaction=False) as pipe:
        in_cases = [
            (r, rec) for (r, _), rec in zip(found, records, strict=True) if rec.get("case_id")
        ]
        for record_id, record in in_cases:
            pipe.hget(keys.case_delivery(record["case_id"]), record_id)
        refs_of = {r: refs or "" for (r, _), refs in zip(in_cases, pipe.execute(), strict=True)}
    shown: list[Undelivered] = []
    expired = []
    for (record_id, at), record, state in zip(found, records, states, strict=True):
        if not record.get("conversation_id"):
            expired.append(record_id)
            continue
        refs = refs_of.get(record_id, "")
        shown.append(
            Undelivered(
                id=record_id,
                at=at,
                status=record.get("status", ""),
                error_code=record.get("error_code", ""),
                conversation_id=record["conversation_id"],
                case_id=record.get("case_id", ""),
                channel=record.get("channel", ""),
                source=record.get("source", ""),
                not_replayable=_why_not(record, state, refs),
            )
        )
    if expired:
        db.zrem(keys.UNDELIVERED_KEY, *expired)
    return shown


def replay_undelivered(db: redis.Redis, record_id: str, actor: str) -> int:
    """Send a case's undelivered line(s) again, as a new attempt; returns how many lines.

    Every record that carried the same lines leaves the list with it (a long line is several
    SMS, each its own record), so one line is never queued twice by two clicks or two
    operators. Raises NotFound, or NotReplayable with the reason."""
    record = db.hgetall(keys.delivery(record_id))
    if not record.get("conversation_id"):
        raise NotFound(record_id)
    cid, case_id = record["conversation_id"], record.get("case_id", "")
    links = db.hgetall(keys.case_delivery(case_id)) if case_id else {}
    refs = links.get(record_id, "")
    reason = _why_not(record, conversations.state(db, cid), refs)
    if reason:
        raise NotReplayable(reason)
    wanted = set(refs.split())
    lines = [
        fields
        for _, fields in db.xrange(keys.case_messages(case_id))
        if fields.get("ref") in wanted and fields.get("text")
    ]
    if not lines:
        raise NotReplayable("text_not_kept")  # the case was erased since
    same_lines = [other for other, its in links.items() if wanted & set(its.split())]
    with db.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(keys.UNDELIVERED_KEY)
                if pipe.zscore(keys.UNDELIVERED_KEY, record_id) is None:
                    raise NotFound(record_id)
                pipe.multi()
                pipe.zrem(keys.UNDELIVERED_KEY, *same_lines)
                for line in lines:
                    conversations.queue_reply(
                        pipe,
                        cid,
                        line["text"],
                        source=_AUTHOR_SOURCE.get(line.get("author", ""), "counsellor"),  # type: ignore[arg-type]
                        case_id=case_id,
                        ref=line["ref"],
                    )
                pipe.execute()
                break
            except redis.WatchError:
                continue  # a status callback changed the list meanwhile; look again
    log.info(
        "undelivered %s of case %s sent again by %s (%d line(s))",
        record_id,
        case_id,
        actor,
        len(lines),
    )
    return len(lines)


def dismiss_undelivered(db: redis.Redis, record_id: str, actor: str) -> None:
    """Take an undelivered reply off the list without sending it again (its record stays)."""
    if not db.zrem(keys.UNDELIVERED_KEY, record_id):
        raise NotFound(record_id)
    log.info("undelivered %s dismissed by %s", record_id, actor)


# ---------------------------------------------------------------- dead letters


def _dead(entry_id: str, fields: dict[str, str]) -> DeadLetter:
    origin = fields.get("origin", keys.INBOUND_STREAM)
    return DeadLetter(
        id=entry_id,
        at=int(entry_id.split("-")[0]) / 1000,
        origin="outbound" if origin == keys.OUTBOUND_STREAM else "inbound",
        error=fields.get("error", ""),
        failed_at=fields.get("failed_at", ""),
        failures=fields.get("failures", ""),
        conversation_id=fields.get("conversation_id", ""),
        case_id=fields.get("case_id", ""),
        channel=fields.get("channel", ""),
        source=fields.get("source", ""),
    )


def list_dead(db: redis.Redis) -> list[DeadLetter]:
    """Every dead letter, oldest first: where it came from and why it failed."""
    return [_dead(entry_id, fields) for entry_id, fields in db.xrange(keys.DEAD_LETTER_STREAM)]


def replay_dead(db: redis.Redis, entry_id: str | None = None, actor: str = "cli") -> int:
    """Put one dead letter (or all) back on its stream; returns how many were replayed.

    An inbound one goes to the end of its conversation's order list too (what
    channels.inbound.append does), and each leaves the dead letters in the same transaction,
    so a replay is never lost nor doubled."""
    entries = (
        db.xrange(keys.DEAD_LETTER_STREAM, entry_id, entry_id)
        if entry_id
        else db.xrange(keys.DEAD_LETTER_STREAM)
    )
    if entry_id and not entries:
        raise NotFound(entry_id)
    replayed = 0
    for dead_id, fields in entries:
        origin = fields.get("origin", keys.INBOUND_STREAM)
        original = {k: v for k, v in fields.items() if k not in _DEAD_META}
        # Out of the dead letters and back on its stream in one step, and only once: an
        # inbound entry also goes to the end of its conversation's order list, as the
        # gateway's append puts it (channels.inbound).
        stream_keys = (
            [keys.OUTBOUND_STREAM, keys.DEAD_LETTER_STREAM]
            if origin == keys.OUTBOUND_STREAM
            else [
                keys.INBOUND_STREAM,
                keys.DEAD_LETTER_STREAM,
                keys.order(original.get("conversation_id", "")),
            ]
        )
        removed = db.eval(
            _REPLAY,
            len(stream_keys),
            *stream_keys,
            dead_id,
            *[part for pair in original.items() for part in pair],
        )
        if removed:
            replayed += 1
            log.info("dead letter %s replayed to %s by %s", dead_id, origin, actor)
    return replayed


# KEYS: the stream it came from, the dead letters, and for an inbound entry its conversation's
# order list. ARGV: the dead letter's id, then the entry's fields. Nothing happens when the
# dead letter is gone already (replayed by someone else).
_REPLAY = """
if redis.call('XDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
if KEYS[3] then redis.call('RPUSH', KEYS[3], id) end
return 1
"""
