"""The human referral queue in Redis: one open case per conversation, atomic claims, an audit trail.

Keys (hotline.keys holds them; case ids look like R42, conversation ids are the pseudonymous ones):
  keys.case(id)                  hash: the case (fields of `Case`)
  keys.case_messages(id)         stream: the transcript (bot part copied at opening, then relayed
                                 messages, counsellor replies, the bot's and the hotline's texts
                                 sent while the case is open, and internal notes); a line sent to
                                 the person has a `ref`, which its outbound entry carries too
  keys.case_delivery(id)         hash the sender writes: delivery record id -> refs of the lines
                                 it carried, so each outgoing line shows how far it got
  keys.case_audit(id)            stream: every change, with who (actor), what (action) and when (at)
  keys.open_case(cid)            the conversation's open case, if any
  keys.conversation_cases(cid)   set: every case of the conversation (for erasure)
  keys.waiting(priority)         sorted sets of waiting cases, score = when opened, less
                                 LEVEL_LEAD per risk level (a riskier case first, then the oldest)
  keys.CLAIMED_KEY               sorted set of claimed cases, score = when claimed
  keys.mine(counsellor)          sorted set of a counsellor's claimed cases
  keys.CLOSED_KEY                sorted set of closed cases, score = when closed (for purging)
  keys.ANONYMOUS_KEY             sorted set of erased cases kept for statistics
  keys.CHANGES_STREAM            one entry per change of any case (case id, action, priority;
                                 never a text), which open consoles follow live
Every change to a case (opening with its transcript, claim, transfer, reply, note, a relayed
message, an outgoing text, close) is one Lua script, so two workers or two counsellors never see half a change.
A script gets every key it touches through KEYS. Where a key depends on what the case holds
(its holder, its conversation, the next case number), the client reads it first and the script
checks it still holds, answering 'stale' for the client to read again and retry.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from hotline import conversations, keys

log = logging.getLogger(__name__)

Priority = Literal["emergency", "high", "request"]
Status = Literal["waiting", "claimed", "closed"]
Consent = Literal["given", "requested", "not_asked"]

# Most urgent first: the order in which counsellors see waiting cases.
PRIORITIES: tuple[Priority, ...] = ("emergency", "high", "request")
RISK_LEVELS = ("none", "elevated", "high", "emergency")
OUTCOMES = (
    "referred_avrr",
    "referred_shelter",
    "referred_police",
    "referred_child_protection",
    "referred_health",
    "referred_legal",
    "information_given",
    "declined",
    "unreachable",
    "not_a_case",
)

# Capped: the console only follows it live, the audit streams keep the history.
CHANGES_MAXLEN = 10_000
# Within one priority a riskier case waits ahead of a plainer one (an elevated request before
# a plain one), then the oldest first: the waiting score is when the case opened less this
# much per risk level. 2**32 seconds outlasts any clock, so levels never mix.
LEVEL_LEAD = 2**32
# How far a sent text got, as a counsellor reads it, from least to most.
DeliveryStatus = Literal["queued", "sent", "delivered", "read", "failed"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("queued", "sent", "delivered", "read", "failed")
# Why a text failed, beyond Twilio's error codes (which read as twilio_<code>): set by the
# sender in channels.delivery records.
DELIVERY_REASONS = ("opted_out", "no_address", "dead_letter")
# Kept for referral/console until it builds its keys through hotline.keys.
CHANGES = keys.CHANGES_STREAM
audit_key = keys.case_audit


# ---------------------------------------------------------------- errors


class ReferralError(Exception):
    """A request about a case that cannot be met; the message says why."""


class CaseNotFound(ReferralError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id} does not exist")
        self.case_id = case_id


class AlreadyClaimed(ReferralError):
    """Another counsellor claimed the case first."""

    def __init__(self, case_id: str, claimed_by: str) -> None:
        super().__init__(f"case {case_id} is already claimed by {claimed_by}")
        self.case_id, self.claimed_by = case_id, claimed_by


class NotYourCase(ReferralError):
    """Replying needs the case to be claimed by the one who replies."""

    def __init__(self, case_id: str, claimed_by: str | None) -> None:
        who = f"claimed by {claimed_by}" if claimed_by else "not claimed yet; claim it first"
        super().__init__(f"case {case_id} is {who}")
        self.case_id, self.claimed_by = case_id, claimed_by


class CaseClosed(ReferralError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id} is closed")
        self.case_id = case_id


class OptedOut(ReferralError):
    """The person texted STOP: nothing may be sent to them until they write START."""

    def __init__(self, case_id: str) -> None:
        super().__init__("this person texted STOP: nothing can be sent until they write START")
        self.case_id = case_id


# ---------------------------------------------------------------- what a case looks like


@dataclass(frozen=True)
class Delivery:
    """How far an outgoing line got. `reason` says why it failed: one of DELIVERY_REASONS,
    twilio_<code> for Twilio's error code, or empty when nobody said."""

    status: DeliveryStatus
    reason: str = ""


@dataclass(frozen=True)
class Message:
    """One line of the transcript."""

    id: str
    at: float
    author: str  # person, bot, system, counsellor
    kind: str  # message (seen by the person or written by them) or note (internal)
    text: str
    actor: str  # the counsellor's name for replies and notes, else the author
    ref: str = ""  # set on a line sent to the person: its outbound entry carries it too
    delivery: Delivery | None = None  # for a line with a ref

    @property
    def outgoing(self) -> bool:
        return bool(self.ref)


@dataclass(frozen=True)
class AuditEvent:
    id: str
    at: float
    actor: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Case:
    id: str
    conversation_id: str
    channel: str
    language: str
    priority: Priority
    status: Status
    risk_level: str
    indicators: list[dict[str, Any]]
    summary: str
    about_other: bool
    consent: str
    trigger: str
    opened_at: float
    updated_at: float
    claimed_by: str | None = None
    claimed_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    outcome: str | None = None
    erased_at: float | None = None
    transcript: list[Message] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status != "closed"


@dataclass(frozen=True)
class Opened:
    case_id: str
    created: bool
    priority: Priority


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _case(raw: dict[str, str], transcript: list[Message] | None = None) -> Case:
    return Case(
        id=raw["id"],
        conversation_id=raw.get("conversation_id", ""),
        channel=raw.get("channel", ""),
        language=raw.get("language", ""),
        priority=raw.get("priority", "request"),  # type: ignore[arg-type]
        status=raw.get("status", "waiting"),  # type: ignore[arg-type]
        risk_level=raw.get("risk_level", "none"),
        indicators=json.loads(raw.get("indicators") or "[]"),
        summary=raw.get("summary", ""),
        about_other=raw.get("about_other") == "1",
        consent=raw.get("consent", ""),
        trigger=raw.get("trigger", ""),
        opened_at=float(raw.get("opened_at") or 0),
        updated_at=float(raw.get("updated_at") or 0),
        claimed_by=raw.get("claimed_by") or None,
        claimed_at=_float(raw.get("claimed_at")),
        closed_at=_float(raw.get("closed_at")),
        closed_by=raw.get("closed_by") or None,
        outcome=raw.get("outcome") or None,
        erased_at=_float(raw.get("erased_at")),
        transcript=transcript or [],
    )


# ---------------------------------------------------------------- the scripts


def _waiting_table(first: int) -> str:
    """Lua: the waiting sets, passed as KEYS[first..] in PRIORITIES order, by priority name."""
    entries = ", ".join(
        f"{priority} = KEYS[{first + index}]" for index, priority in enumerate(PRIORITIES)
    )
    return f"local waiting = {{{entries}}}\n"


def _waiting_keys() -> list[str]:
    return [keys.waiting(priority) for priority in PRIORITIES]


# Lua: a waiting case's score, from its hash (see LEVEL_LEAD); written out in full, since a
# number Redis converts itself keeps only 14 digits.
_WAITING_SCORE = f"""
local function waiting_score(key)
  local level = tonumber(redis.call('HGET', key, 'level_rank') or '0') or 0
  return string.format('%.6f', tonumber(redis.call('HGET', key, 'opened_at')) - {LEVEL_LEAD} * level)
end
"""


# Opens the conversation's case, or updates the one already open (never a twin), and copies in
# the conversation so far.
# KEYS: open, sequence, conversation's cases, case, messages, audit, changes, waiting sets.
# ARGV: the case id the client expects (the open one, or the next number), now, priority, rank,
# new case's fields, assessment update, actor, transcript lines, changes maxlen.
_OPEN = (
    _waiting_table(8)
    + _WAITING_SCORE
    + """
local existing = redis.call('GET', KEYS[1])
local id, now, priority, rank, actor = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[7]
local key, messages, audit, changes, maxlen = KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[9]
local update = cjson.decode(ARGV[6])
local created = 0
if existing then
  if existing ~= id then return {'stale'} end
  local detail = {}
  local old_priority = redis.call('HGET', key, 'priority')
  if rank < tonumber(redis.call('HGET', key, 'rank')) then
    redis.call('HSET', key, 'priority', priority, 'rank', rank)
    detail['priority'] = priority
    detail['previous_priority'] = old_priority
  end
  -- The newest assessment covers the whole conversation; it replaces an equal or lesser one.
  if tonumber(update['level_rank']) >= tonumber(redis.call('HGET', key, 'level_rank') or '0') then
    redis.call('HSET', key, 'risk_level', update['risk_level'], 'level_rank', update['level_rank'],
      'indicators', update['indicators'], 'summary', update['summary'], 'about_other', update['about_other'])
    detail['risk_level'] = update['risk_level']
  end
  -- A raised priority or level moves a waiting case to its new place, its age kept.
  if redis.call('HGET', key, 'status') == 'waiting' then
    redis.call('ZREM', waiting[old_priority], id)
    redis.call('ZADD', waiting[redis.call('HGET', key, 'priority')], waiting_score(key), id)
  end
  local consent = redis.call('HGET', key, 'consent')
  if update['consent'] ~= '' and consent ~= 'given' and consent ~= update['consent'] then
    redis.call('HSET', key, 'consent', update['consent'], 'consent_at', now)
    detail['consent'] = update['consent']
  end
  redis.call('HSET', key, 'updated_at', now)
  redis.call('XADD', audit, '*', 'at', now, 'actor', actor, 'action', 'retriggered',
    'detail', cjson.encode(detail))
  redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'case', id, 'action', 'retriggered',
    'priority', redis.call('HGET', key, 'priority'))
else
  if 'R' .. ((tonumber(redis.call('GET', KEYS[2])) or 0) + 1) ~= id then return {'stale'} end
  redis.call('INCR', KEYS[2])
  local fields = cjson.decode(ARGV[5])
  local flat = {'id', id}
  for name, value in pairs(fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  redis.call('HSET', key, unpack(flat))
  redis.call('SET', KEYS[1], id)
  redis.call('SADD', KEYS[3], id)
  redis.call('ZADD', waiting[priority], waiting_score(key), id)
  redis.call('XADD', audit, '*', 'at', now, 'actor', actor, 'action', 'opened',
    'detail', cjson.encode({priority = priority, consent = fields['consent'], trigger = fields['trigger'],
      risk_level = fields['risk_level']}))
  redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'case', id, 'action', 'opened',
    'priority', priority)
  created = 1
end
-- Only lines newer than those the case holds, so a second trigger adds no duplicates.
local since = tonumber(redis.call('HGET', key, 'transcript_until') or '')
local last = nil
for _, line in ipairs(cjson.decode(ARGV[8])) do
  if since == nil or line[1] > since then
    redis.call('XADD', messages, '*', 'at', line[2], 'author', line[3], 'kind', 'message',
      'actor', line[3], 'text', line[4])
    last = line[2]
  end
end
if last then redis.call('HSET', key, 'transcript_until', last) end
return {id, created, redis.call('HGET', key, 'priority')}
"""
)

# Claims a waiting case; the loser learns who has it.
# KEYS: case, audit, changes, claimed, the claimer's cases, waiting sets.
_CLAIM = (
    _waiting_table(6)
    + """
local key, audit, changes = KEYS[1], KEYS[2], KEYS[3]
local id, counsellor, now, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local status = redis.call('HGET', key, 'status')
if status == 'closed' then return {'closed'} end
if status == 'claimed' then
  local holder = redis.call('HGET', key, 'claimed_by')
  if holder == counsellor then return {'ok'} end
  return {'claimed', holder}
end
redis.call('HSET', key, 'status', 'claimed', 'claimed_by', counsellor, 'claimed_at', now, 'updated_at', now)
redis.call('ZREM', waiting[redis.call('HGET', key, 'priority')], id)
redis.call('ZADD', KEYS[4], now, id)
redis.call('ZADD', KEYS[5], now, id)
redis.call('XADD', audit, '*', 'at', now, 'actor', counsellor, 'action', 'claimed', 'detail', '{}')
redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'case', id, 'action', 'claimed',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok'}
"""
)

# Hands a case to another counsellor, or back to the queue when ARGV[3] is empty.
# KEYS: case, audit, changes, claimed, the holder's cases, the target's cases, waiting sets.
# ARGV[5]: the holder the client read, whose set KEYS[5] is.
_TRANSFER = (
    _waiting_table(7)
    + _WAITING_SCORE
    + """
local key, audit, changes = KEYS[1], KEYS[2], KEYS[3]
local id, actor, target, now, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local status = redis.call('HGET', key, 'status')
if status == 'closed' then return {'closed'} end
local holder = redis.call('HGET', key, 'claimed_by') or ''
if holder ~= ARGV[5] then return {'stale'} end
if holder ~= '' then redis.call('ZREM', KEYS[5], id) end
local priority = redis.call('HGET', key, 'priority')
if target == '' then
  redis.call('HSET', key, 'status', 'waiting', 'claimed_by', '', 'claimed_at', '', 'updated_at', now)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZADD', waiting[priority], waiting_score(key), id)
else
  redis.call('HSET', key, 'status', 'claimed', 'claimed_by', target, 'claimed_at', now, 'updated_at', now)
  redis.call('ZREM', waiting[priority], id)
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('ZADD', KEYS[6], now, id)
end
redis.call('XADD', audit, '*', 'at', now, 'actor', actor, 'action', 'transferred',
  'detail', cjson.encode({from = holder, to = target}))
redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'case', id, 'action', 'transferred',
  'priority', priority)
return {'ok'}
"""
)

# Closes a case with its outcome; the conversation goes back to the bot.
# KEYS: case, messages, audit, changes, claimed, closed, the conversation's open case, the
# holder's cases, waiting sets. ARGV[6], ARGV[7]: the conversation and holder the client read.
_CLOSE = (
    _waiting_table(9)
    + """
local key, messages, audit, changes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, actor, outcome, now, note, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[8]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
if redis.call('HGET', key, 'status') == 'closed' then return {'closed'} end
local cid = redis.call('HGET', key, 'conversation_id') or ''
local holder = redis.call('HGET', key, 'claimed_by') or ''
if cid ~= ARGV[6] or holder ~= ARGV[7] then return {'stale'} end
if note ~= '' then
  redis.call('XADD', messages, '*', 'at', now, 'author', 'counsellor', 'kind', 'note',
    'actor', actor, 'text', note)
end
redis.call('HSET', key, 'status', 'closed', 'outcome', outcome, 'closed_by', actor, 'closed_at', now,
  'updated_at', now)
if cid ~= '' and redis.call('GET', KEYS[7]) == id then redis.call('DEL', KEYS[7]) end
redis.call('ZREM', waiting[redis.call('HGET', key, 'priority')], id)
redis.call('ZREM', KEYS[5], id)
if holder ~= '' then redis.call('ZREM', KEYS[8], id) end
redis.call('ZADD', KEYS[6], now, id)
redis.call('XADD', audit, '*', 'at', now, 'actor', actor, 'action', 'closed',
  'detail', cjson.encode({outcome = outcome, note = note ~= ''}))
redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'case', id, 'action', 'closed',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok', cid}
"""
)

# Adds a person's message to an open case (the worker relays it while the bot is silent).
# KEYS: case, messages, audit, changes.
_APPEND = """
local key, messages, audit, changes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, author, text, actor, now, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
if redis.call('HGET', key, 'status') == 'closed' then return {'closed'} end
local message = redis.call('XADD', messages, '*', 'at', now, 'author', author, 'kind', 'message',
  'actor', actor, 'text', text)
redis.call('HSET', key, 'updated_at', now, 'last_person_at', now)
redis.call('XADD', audit, '*', 'at', now, 'actor', actor, 'action', 'message_received', 'detail', '{}')
redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'case', id, 'action', 'message_received',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok', message}
"""

# A counsellor's message: into the transcript and onto the outbound stream together, because
# the person only ever gets what is in the transcript, and vice versa. The outbound entry has
# the fields of hotline.conversations.outbound_fields (tests/referral/test_queue.py holds them),
# with the line's ref, so the sender can say how far it got. Refused when the person texted
# STOP: it would never arrive, and must never look sent. A reply also brings a person who went
# back to the bot while waiting (`with_bot`) back to the case.
# KEYS: case, messages, audit, changes, outbound, conversation. ARGV[5]: '1' when any holder may
# reply; ARGV[9]: the conversation the client read, whose hash KEYS[6] is.
_REPLY = """
local key, messages, audit, changes, outbound = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local conversation = KEYS[6]
local id, counsellor, text, now, any_holder = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ref = ARGV[8]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
if redis.call('HGET', key, 'status') == 'closed' then return {'closed'} end
local holder = redis.call('HGET', key, 'claimed_by') or ''
if holder ~= counsellor and not (any_holder == '1' and holder ~= '') then return {'not_yours', holder} end
local cid = redis.call('HGET', key, 'conversation_id') or ''
if cid ~= ARGV[9] then return {'stale'} end
if redis.call('HGET', conversation, 'opted_out') == '1' then return {'opted_out'} end
redis.call('HDEL', conversation, 'with_bot')
local message = redis.call('XADD', messages, '*', 'at', now, 'author', 'counsellor', 'kind', 'message',
  'actor', counsellor, 'text', text, 'ref', ref)
redis.call('XADD', outbound, 'MAXLEN', '~', ARGV[7], '*', 'conversation_id', cid, 'text', text,
  'source', 'counsellor', 'case_id', id, 'ref', ref)
redis.call('HSET', key, 'updated_at', now)
redis.call('XADD', audit, '*', 'at', now, 'actor', counsellor, 'action', 'replied', 'detail', '{}')
redis.call('XADD', changes, 'MAXLEN', '~', ARGV[6], '*', 'case', id, 'action', 'replied',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok', message}
"""

# The bot's or the hotline's own text to the person of a case (the conversation router and the
# hand-back call it through record_outgoing, inside their transactions): into the transcript
# with its ref and onto the outbound stream together, as a counsellor's reply is. A closed case
# still takes it (the closing line, or a text that raced the close: the person got it in the
# case's name); an erased or missing one gets no line, as an erased transcript must not be
# written again, and the text is still sent when the conversation is known, since the router
# decided the person gets it.
# KEYS: case, messages, audit, changes, outbound.
# ARGV: case id, author (bot|system), text, at, ref, conversation id or '', maxlens.
_OUTGOING = """
local key, messages, audit, changes, outbound = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, author, text, at, ref, cid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local recorded = redis.call('EXISTS', key) == 1 and (redis.call('HGET', key, 'erased_at') or '') == ''
if recorded then
  local own = redis.call('HGET', key, 'conversation_id') or ''
  if cid == '' then cid = own elseif cid ~= own then recorded = false end
end
if cid == '' then return {'missing'} end
if not recorded then
  redis.call('XADD', outbound, 'MAXLEN', '~', ARGV[8], '*', 'conversation_id', cid, 'text', text,
    'source', author)
  return {'unrecorded'}
end
local message = redis.call('XADD', messages, '*', 'at', at, 'author', author, 'kind', 'message',
  'actor', author, 'text', text, 'ref', ref)
redis.call('XADD', outbound, 'MAXLEN', '~', ARGV[8], '*', 'conversation_id', cid, 'text', text,
  'source', author, 'case_id', id, 'ref', ref)
redis.call('HSET', key, 'updated_at', at)
redis.call('XADD', audit, '*', 'at', at, 'actor', author, 'action', 'sent', 'detail', '{}')
redis.call('XADD', changes, 'MAXLEN', '~', ARGV[7], '*', 'case', id, 'action', 'sent',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok', message}
"""

# An internal note: in the case for counsellors, never sent. KEYS: case, messages, audit, changes.
_NOTE = """
local key, messages, audit, changes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, counsellor, text, now, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local message = redis.call('XADD', messages, '*', 'at', now, 'author', 'counsellor', 'kind', 'note',
  'actor', counsellor, 'text', text)
redis.call('HSET', key, 'updated_at', now)
redis.call('XADD', audit, '*', 'at', now, 'actor', counsellor, 'action', 'noted', 'detail', '{}')
redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'case', id, 'action', 'noted',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok', message}
"""

# How often a script may find what the client read already changed before the client gives
# up; each stale answer means another change went through, so this is never reached in use.
_MAX_STALE = 1000


def _line(entry_id: str, f: dict[str, str], delivery: Delivery | None) -> Message:
    return Message(
        id=entry_id,
        at=float(f.get("at") or 0),
        author=f.get("author", ""),
        kind=f.get("kind", "message"),
        text=f.get("text", ""),
        actor=f.get("actor", ""),
        ref=f.get("ref", ""),
        delivery=delivery,
    )


def _in_time_order(lines: list[Message]) -> list[Message]:
    # The bot part is copied in when the case opens, after messages it may postdate.
    return sorted(lines, key=lambda m: (m.at, m.id))


def _raise_for(result: list[Any], case_id: str) -> None:
    status = result[0]
    if status == "missing":
        raise CaseNotFound(case_id)
    if status == "closed":
        raise CaseClosed(case_id)
    if status == "claimed":
        raise AlreadyClaimed(case_id, result[1])
    if status == "not_yours":
        raise NotYourCase(case_id, result[1] or None)
    if status == "opted_out":
        raise OptedOut(case_id)


def new_ref() -> str:
    """A transcript line's ref, made by the client so a transaction needs no read to know it."""
    return uuid.uuid4().hex


def record_outgoing(
    pipe: conversations.Writer,
    case_id: str,
    text: str,
    *,
    author: str,
    at: float,
    conversation_id: str | None = None,
) -> str:
    """Put the bot's or the hotline's text to the person of an open case in its transcript
    and on the outbound stream, as one step: the returned ref names the transcript line, and
    the outbound entry carries it (with `case_id`) so the sender links the line to its
    delivery records and the console shows how far it got.

    `author` is "bot" or "system"; `at` is when it was said (the line's time in the
    transcript). Made for a transaction pipeline (`db.pipeline(transaction=True)`, after any
    WATCH): it only queues one script, whose answer comes with the others at EXEC: ["ok",
    line id] (a closed case takes the line too: the closing line, or a text that raced the
    close), ["unrecorded"] when the case was erased or is gone (the text is still queued for
    the person, without a line), or ["missing"] when the case is gone and no
    `conversation_id` was given (nothing is sent). Give `conversation_id` when known, so the
    text reaches the person whatever became of the case. Called with a plain client, the
    script runs at once. Twin of `Referrals.reply` for counsellors.
    """
    if author not in ("bot", "system"):
        raise ValueError("an outgoing text's author is bot or system")
    ref = new_ref()
    pipe.eval(
        _OUTGOING,
        5,
        keys.case(case_id),
        keys.case_messages(case_id),
        keys.case_audit(case_id),
        keys.CHANGES_STREAM,
        keys.OUTBOUND_STREAM,
        case_id,
        author,
        text,
        f"{at:.6f}",
        ref,
        conversation_id or "",
        CHANGES_MAXLEN,
        conversations.OUTBOUND_MAXLEN,
    )
    return ref


# ---------------------------------------------------------------- delivery, as the console reads it

# channels.delivery's record statuses (Twilio's, and the sender's own rejected/not_sent), as
# the counsellor reads them. Anything else (a status Twilio adds later) reads as queued.
_READ_AS: dict[str, DeliveryStatus] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "receiving": "sent",
    "received": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
    "rejected": "failed",
    "not_sent": "failed",
}


def _failure_reason(record: dict[str, str]) -> str:
    if record.get("reason"):
        return record["reason"]
    code = record.get("error_code", "")
    return f"twilio_{code}" if code.isdigit() else ""


def delivery_of(records: list[dict[str, str]]) -> Delivery:
    """One line's status from the records of the bodies that carried it.

    Only the latest attempt counts (a dead letter replayed later is a new attempt); within it
    the line failed if any of its bodies did, else it got as far as its slowest body.
    """
    if not records:
        return Delivery("queued")
    latest = max(records, key=lambda r: float(r.get("created_at") or 0))
    attempt = latest.get("attempt", "")
    current = [r for r in records if r.get("attempt", "") == attempt]
    for record in current:
        if _READ_AS.get(record.get("status", ""), "queued") == "failed":
            return Delivery("failed", _failure_reason(record))
    order = DELIVERY_STATUSES.index
    return Delivery(min((_READ_AS.get(r.get("status", ""), "queued") for r in current), key=order))


# ---------------------------------------------------------------- the queue


class Referrals:
    """The queue's Python API, used by the action server, the channel workers and the console."""

    def __init__(self, db: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._open = db.register_script(_OPEN)
        self._claim = db.register_script(_CLAIM)
        self._transfer = db.register_script(_TRANSFER)
        self._close = db.register_script(_CLOSE)
        self._append = db.register_script(_APPEND)
        self._reply = db.register_script(_REPLY)
        self._note = db.register_script(_NOTE)

    def _now(self) -> str:
        return f"{self.clock():.6f}"

    @staticmethod
    def _until_fresh(attempt: Callable[[], list[Any]]) -> list[Any]:
        """Run a script whose keys the client read first, again while it answers 'stale'."""
        for _ in range(_MAX_STALE):
            result = attempt()
            if result[0] != "stale":
                return result
        raise ReferralError("the case kept changing; try again")

    # ------------------------------------------------------------ opening

    def open_case(
        self,
        conversation_id: str,
        *,
        priority: Priority,
        channel: str,
        language: str,
        risk_level: str = "none",
        indicators: Iterable[dict[str, Any]] = (),
        summary: str = "",
        about_other: bool = False,
        consent: Consent | Literal[""] = "",
        trigger: str = "",
        actor: str = "bot",
        transcript: Iterable[tuple[float, str, str]] = (),
    ) -> Opened:
        """Open the conversation's case, or update the open one (its priority only goes up).

        `transcript` is the conversation so far as (when, author, text), author person or bot;
        lines newer than those already in the case are added, in the same script.
        """
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}")
        now = self._now()
        evidence = json.dumps(list(indicators), ensure_ascii=False)
        level_rank = str(RISK_LEVELS.index(risk_level)) if risk_level in RISK_LEVELS else "0"
        rank = str(PRIORITIES.index(priority))
        fields = {
            "conversation_id": conversation_id,
            "channel": channel,
            "language": language,
            "priority": priority,
            "rank": rank,
            "status": "waiting",
            "risk_level": risk_level,
            "level_rank": level_rank,
            "indicators": evidence,
            "summary": summary,
            "about_other": "1" if about_other else "0",
            "consent": consent,
            "consent_at": now if consent else "",
            "trigger": trigger,
            "opened_at": now,
            "updated_at": now,
            "claimed_by": "",
        }
        update = {
            "risk_level": risk_level,
            "level_rank": level_rank,
            "indicators": evidence,
            "summary": summary,
            "about_other": fields["about_other"],
            "consent": consent,
        }
        # (when, when as stored, author, text): the script compares the first, stores the second.
        lines = json.dumps(
            [
                [at, f"{at:.6f}", author, text]
                for at, author, text in sorted(line for line in transcript if line[2])
            ],
            ensure_ascii=False,
        )
        args = [
            now,
            priority,
            rank,
            json.dumps(fields),
            json.dumps(update),
            actor,
            lines,
            CHANGES_MAXLEN,
        ]

        def attempt() -> list[Any]:
            case_id = self.db.get(keys.open_case(conversation_id))
            if case_id is None:
                case_id = f"R{int(self.db.get(keys.CASE_SEQUENCE_KEY) or 0) + 1}"
            return self._open(
                keys=[
                    keys.open_case(conversation_id),
                    keys.CASE_SEQUENCE_KEY,
                    keys.conversation_cases(conversation_id),
                    keys.case(case_id),
                    keys.case_messages(case_id),
                    keys.case_audit(case_id),
                    keys.CHANGES_STREAM,
                    *_waiting_keys(),
                ],
                args=[case_id, *args],
            )

        case_id, created, current = self._until_fresh(attempt)
        if created:
            log.info("case %s opened, priority %s", case_id, priority)
        return Opened(case_id, bool(created), current)

    def open_case_id(self, conversation_id: str) -> str | None:
        """The conversation's open case, which its incoming messages go to instead of the bot."""
        return self.db.get(keys.open_case(conversation_id))

    # ------------------------------------------------------------ the person's messages

    def append_message(
        self, case_id: str, *, author: str = "person", text: str, actor: str = "person"
    ) -> str:
        """Relay a message into an open case; raises CaseClosed if it was closed meanwhile
        (then the message belongs to the bot again)."""
        result = self._append(
            keys=[
                keys.case(case_id),
                keys.case_messages(case_id),
                keys.case_audit(case_id),
                keys.CHANGES_STREAM,
            ],
            args=[case_id, author, text, actor, self._now(), CHANGES_MAXLEN],
        )
        _raise_for(result, case_id)
        return result[1]

    # ------------------------------------------------------------ the counsellor's actions

    def claim(self, case_id: str, counsellor: str) -> Case:
        """Take a waiting case; AlreadyClaimed says who was first."""
        result = self._claim(
            keys=[
                keys.case(case_id),
                keys.case_audit(case_id),
                keys.CHANGES_STREAM,
                keys.CLAIMED_KEY,
                keys.mine(counsellor),
                *_waiting_keys(),
            ],
            args=[case_id, counsellor, self._now(), CHANGES_MAXLEN],
        )
        _raise_for(result, case_id)
        return self.get(case_id, transcript=False)

    def transfer(self, case_id: str, actor: str, to: str | None) -> Case:
        """Give a case to another counsellor, or back to the queue (to=None)."""
        target = to or ""

        def attempt() -> list[Any]:
            holder = self.db.hget(keys.case(case_id), "claimed_by") or ""
            return self._transfer(
                keys=[
                    keys.case(case_id),
                    keys.case_audit(case_id),
                    keys.CHANGES_STREAM,
                    keys.CLAIMED_KEY,
                    keys.mine(holder),
                    keys.mine(target),
                    *_waiting_keys(),
                ],
                args=[case_id, actor, target, self._now(), holder, CHANGES_MAXLEN],
            )

        _raise_for(self._until_fresh(attempt), case_id)
        return self.get(case_id, transcript=False)

    def reply(self, case_id: str, counsellor: str, text: str, *, any_holder: bool = False) -> str:
        """Send a counsellor's message to the person, on their channel, and keep it in the case.

        Refused with OptedOut when the person texted STOP. `any_holder`: a supervisor may step into a case another counsellor holds (it must
        still be claimed by someone, so it never sits in the waiting queue while answered).
        """
        if not text.strip():
            raise ReferralError("a reply cannot be empty")
        ref = new_ref()

        def attempt() -> list[Any]:
            conversation_id = self.db.hget(keys.case(case_id), "conversation_id") or ""
            return self._reply(
                keys=[
                    keys.case(case_id),
                    keys.case_messages(case_id),
                    keys.case_audit(case_id),
                    keys.CHANGES_STREAM,
                    keys.OUTBOUND_STREAM,
                    keys.conversation(conversation_id),
                ],
                args=[
                    case_id,
                    counsellor,
                    text,
                    self._now(),
                    "1" if any_holder else "0",
                    CHANGES_MAXLEN,
                    conversations.OUTBOUND_MAXLEN,
                    ref,
                    conversation_id,
                ],
            )

        result = self._until_fresh(attempt)
        _raise_for(result, case_id)
        return result[1]

    def note(self, case_id: str, counsellor: str, text: str) -> str:
        """An internal note: in the case for counsellors, never sent to the person."""
        result = self._note(
            keys=[
                keys.case(case_id),
                keys.case_messages(case_id),
                keys.case_audit(case_id),
                keys.CHANGES_STREAM,
            ],
            args=[case_id, counsellor, text, self._now(), CHANGES_MAXLEN],
        )
        _raise_for(result, case_id)
        return result[1]

    def close(self, case_id: str, counsellor: str, outcome: str, note: str | None = None) -> Case:
        """Close with an outcome code (OUTCOMES). Resuming the bot is referral.handback's job."""
        if outcome not in OUTCOMES:
            raise ReferralError(f"outcome must be one of: {', '.join(OUTCOMES)}")

        def attempt() -> list[Any]:
            conversation_id, holder = (
                v or "" for v in self.db.hmget(keys.case(case_id), "conversation_id", "claimed_by")
            )
            return self._close(
                keys=[
                    keys.case(case_id),
                    keys.case_messages(case_id),
                    keys.case_audit(case_id),
                    keys.CHANGES_STREAM,
                    keys.CLAIMED_KEY,
                    keys.CLOSED_KEY,
                    keys.open_case(conversation_id),
                    keys.mine(holder),
                    *_waiting_keys(),
                ],
                args=[
                    case_id,
                    counsellor,
                    outcome,
                    self._now(),
                    note or "",
                    conversation_id,
                    holder,
                    CHANGES_MAXLEN,
                ],
            )

        _raise_for(self._until_fresh(attempt), case_id)
        log.info("case %s closed: %s", case_id, outcome)
        return self.get(case_id, transcript=False)

    # ------------------------------------------------------------ reading

    def get(self, case_id: str, transcript: bool = True) -> Case:
        """A case, with its transcript in time order unless asked not to."""
        raw = self.db.hgetall(keys.case(case_id))
        if not raw:
            raise CaseNotFound(case_id)
        return _case(raw, self.transcript(case_id) if transcript else None)

    def transcript(self, case_id: str) -> list[Message]:
        """The case's lines in time order, each outgoing one with its delivery status."""
        entries = self.db.xrange(keys.case_messages(case_id))
        statuses: dict[str, Delivery | None] = (
            self.deliveries(case_id) if any(f.get("ref") for _, f in entries) else {}
        )
        lines = [
            _line(
                entry_id,
                f,
                statuses.get(f["ref"], Delivery("queued")) if f.get("ref") else None,
            )
            for entry_id, f in entries
        ]
        return _in_time_order(lines)

    def recent_lines(self, case_id: str, count: int) -> list[Message]:
        """The case's last `count` lines in time order, without delivery statuses: what the
        conversation router reads for every message written into the case, at a cost that
        does not grow with the case."""
        entries = self.db.xrevrange(keys.case_messages(case_id), count=count)
        return _in_time_order([_line(entry_id, f, None) for entry_id, f in entries])

    def deliveries(self, case_id: str) -> dict[str, Delivery | None]:
        """How far each of the case's outgoing lines got, by ref (None once its records are
        past their retention); a line not there is still queued for the sender. Two reads:
        the links, then their records (no text in either)."""
        links = self.db.hgetall(keys.case_delivery(case_id))
        if not links:
            return {}
        record_ids = list(links)
        with self.db.pipeline(transaction=False) as pipe:
            for record_id in record_ids:
                pipe.hgetall(keys.delivery(record_id))
            records = dict(zip(record_ids, pipe.execute(), strict=True))
        by_ref: dict[str, list[dict[str, str]]] = {}
        for record_id, refs in links.items():
            for ref in refs.split():
                by_ref.setdefault(ref, [])
                if records[record_id]:  # a record past its retention says nothing
                    by_ref[ref].append(records[record_id])
        return {ref: delivery_of(found) if found else None for ref, found in by_ref.items()}

    def audit(self, case_id: str) -> list[AuditEvent]:
        return [
            AuditEvent(
                id=entry_id,
                at=float(f.get("at") or 0),
                actor=f.get("actor", ""),
                action=f.get("action", ""),
                detail=json.loads(f.get("detail") or "{}"),
            )
            for entry_id, f in self.db.xrange(keys.case_audit(case_id))
        ]

    def _many(self, case_ids: list[str]) -> list[Case]:
        if not case_ids:
            return []
        with self.db.pipeline(transaction=False) as pipe:
            for case_id in case_ids:
                pipe.hgetall(keys.case(case_id))
            raws = pipe.execute()
        return [_case(raw) for raw in raws if raw]

    def _waiting_ids(self, limit: int | None) -> list[str]:
        ids: list[str] = []
        for priority in PRIORITIES:
            if limit is not None and len(ids) >= limit:
                break
            end = -1 if limit is None else limit - len(ids) - 1
            ids += self.db.zrange(keys.waiting(priority), 0, end)
        return ids

    def list_waiting(self, limit: int | None = None) -> list[Case]:
        """Waiting cases, emergency first, then high, then requests; within each the riskier
        first (an elevated request before a plain one), then the oldest."""
        return self._many(self._waiting_ids(limit))

    def list_claimed(self, limit: int | None = None) -> list[Case]:
        return self._many(self.db.zrange(keys.CLAIMED_KEY, 0, -1 if limit is None else limit - 1))

    def list_open(self, limit: int | None = None) -> list[Case]:
        """Every case not closed: the waiting ones in queue order, then the claimed ones."""
        waiting = self._waiting_ids(limit)
        rest = None if limit is None else limit - len(waiting)
        claimed = (
            []
            if rest == 0
            else self.db.zrange(keys.CLAIMED_KEY, 0, -1 if rest is None else rest - 1)
        )
        return self._many(waiting + claimed)

    def list_mine(self, counsellor: str, limit: int | None = None) -> list[Case]:
        return self._many(
            self.db.zrange(keys.mine(counsellor), 0, -1 if limit is None else limit - 1)
        )

    def count(self, tab: str, counsellor: str = "") -> int:
        """How many cases a queue tab holds (waiting, mine or open), without reading them."""
        with self.db.pipeline(transaction=False) as pipe:
            if tab in ("waiting", "open"):
                for priority in PRIORITIES:
                    pipe.zcard(keys.waiting(priority))
            if tab == "open":
                pipe.zcard(keys.CLAIMED_KEY)
            if tab == "mine":
                pipe.zcard(keys.mine(counsellor))
            return sum(pipe.execute())

    def list_closed(self, limit: int = 100) -> list[Case]:
        """Most recently closed first."""
        return self._many(self.db.zrevrange(keys.CLOSED_KEY, 0, limit - 1))

    def cases_of(self, conversation_id: str) -> list[str]:
        return sorted(
            self.db.smembers(keys.conversation_cases(conversation_id)), key=lambda c: int(c[1:])
        )
