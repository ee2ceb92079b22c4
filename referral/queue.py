"""The human referral queue in Redis: one open case per conversation, atomic claims, an audit trail.

Keys (case ids look like R42; conversation ids are the pseudonymous ones, never numbers):
  referral:case:{id}            hash: the case (fields of `Case`)
  referral:case:{id}:messages   stream: the transcript (bot part copied at opening, then relayed
                                messages, counsellor replies and internal notes)
  referral:case:{id}:audit      stream: every change, with who (actor), what (action) and when (at)
  referral:open:{cid}           the conversation's open case, if any
  referral:conversation:{cid}   set: every case of the conversation (for erasure)
  referral:waiting:{priority}   sorted sets of waiting cases, score = when opened
  referral:claimed              sorted set of claimed cases, score = when claimed
  referral:mine:{counsellor}    sorted set of a counsellor's claimed cases
  referral:closed               sorted set of closed cases, score = when closed (for purging)
  referral:anonymous            sorted set of erased cases kept for statistics
  referral:changes              stream: one entry per change of any case (case id, action,
                                priority; never a text), which open consoles follow live
Every state change runs as one Lua script, so two workers or two counsellors never see half a
change; the scripts name keys they derive from the case id, which needs one Redis (or Sentinel),
not Redis Cluster.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from hotline import conversations

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

SEQUENCE = "referral:seq"
CLAIMED = "referral:claimed"
CLOSED = "referral:closed"
ANONYMOUS = "referral:anonymous"
# Capped: the console only follows it live, the audit streams keep the history.
CHANGES = "referral:changes"
CHANGES_MAXLEN = 10_000


def case_key(case_id: str) -> str:
    return f"referral:case:{case_id}"


def messages_key(case_id: str) -> str:
    return f"referral:case:{case_id}:messages"


def audit_key(case_id: str) -> str:
    return f"referral:case:{case_id}:audit"


def open_key(conversation_id: str) -> str:
    return f"referral:open:{conversation_id}"


def conversation_cases_key(conversation_id: str) -> str:
    return f"referral:conversation:{conversation_id}"


def waiting_key(priority: str) -> str:
    return f"referral:waiting:{priority}"


def mine_key(counsellor: str) -> str:
    return f"referral:mine:{counsellor}"


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


# ---------------------------------------------------------------- what a case looks like


@dataclass(frozen=True)
class Message:
    """One line of the transcript."""

    id: str
    at: float
    author: str  # person, bot, counsellor
    kind: str  # message (seen by the person or written by them) or note (internal)
    text: str
    actor: str  # the counsellor's name for replies and notes, else the author


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

# Opens the conversation's case, or updates the one already open: never a twin.
_OPEN = """
local existing = redis.call('GET', KEYS[1])
local now, priority, rank, actor = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[7]
local update = cjson.decode(ARGV[6])
if existing then
  local key = 'referral:case:' .. existing
  local detail = {}
  local old_priority = redis.call('HGET', key, 'priority')
  if rank < tonumber(redis.call('HGET', key, 'rank')) then
    redis.call('HSET', key, 'priority', priority, 'rank', rank)
    if redis.call('HGET', key, 'status') == 'waiting' then
      redis.call('ZREM', 'referral:waiting:' .. old_priority, existing)
      redis.call('ZADD', 'referral:waiting:' .. priority, redis.call('HGET', key, 'opened_at'), existing)
    end
    detail['priority'] = priority
    detail['previous_priority'] = old_priority
  end
  -- The newest assessment covers the whole conversation; it replaces an equal or lesser one.
  if tonumber(update['level_rank']) >= tonumber(redis.call('HGET', key, 'level_rank') or '0') then
    redis.call('HSET', key, 'risk_level', update['risk_level'], 'level_rank', update['level_rank'],
      'indicators', update['indicators'], 'summary', update['summary'], 'about_other', update['about_other'])
    detail['risk_level'] = update['risk_level']
  end
  local consent = redis.call('HGET', key, 'consent')
  if update['consent'] ~= '' and consent ~= 'given' and consent ~= update['consent'] then
    redis.call('HSET', key, 'consent', update['consent'], 'consent_at', now)
    detail['consent'] = update['consent']
  end
  redis.call('HSET', key, 'updated_at', now)
  redis.call('XADD', key .. ':audit', '*', 'at', now, 'actor', actor, 'action', 'retriggered',
    'detail', cjson.encode(detail))
  redis.call('XADD', 'referral:changes', 'MAXLEN', '~', 10000, '*', 'case', existing, 'action', 'retriggered',
    'priority', redis.call('HGET', key, 'priority'))
  return {existing, 0, redis.call('HGET', key, 'priority')}
end
local id = 'R' .. redis.call('INCR', KEYS[2])
local key = 'referral:case:' .. id
local fields = cjson.decode(ARGV[5])
local flat = {'id', id}
for name, value in pairs(fields) do
  flat[#flat + 1] = name
  flat[#flat + 1] = value
end
redis.call('HSET', key, unpack(flat))
redis.call('SET', KEYS[1], id)
redis.call('SADD', KEYS[3], id)
redis.call('ZADD', 'referral:waiting:' .. priority, now, id)
redis.call('XADD', key .. ':audit', '*', 'at', now, 'actor', actor, 'action', 'opened',
  'detail', cjson.encode({priority = priority, consent = fields['consent'], trigger = fields['trigger'],
    risk_level = fields['risk_level']}))
redis.call('XADD', 'referral:changes', 'MAXLEN', '~', 10000, '*', 'case', id, 'action', 'opened',
  'priority', priority)
return {id, 1, priority}
"""

# Claims a waiting case; the loser learns who has it.
_CLAIM = """
local key = KEYS[1]
local id, counsellor, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local status = redis.call('HGET', key, 'status')
if status == 'closed' then return {'closed'} end
if status == 'claimed' then
  local holder = redis.call('HGET', key, 'claimed_by')
  if holder == counsellor then return {'ok'} end
  return {'claimed', holder}
end
redis.call('HSET', key, 'status', 'claimed', 'claimed_by', counsellor, 'claimed_at', now, 'updated_at', now)
redis.call('ZREM', 'referral:waiting:' .. redis.call('HGET', key, 'priority'), id)
redis.call('ZADD', 'referral:claimed', now, id)
redis.call('ZADD', 'referral:mine:' .. counsellor, now, id)
redis.call('XADD', key .. ':audit', '*', 'at', now, 'actor', counsellor, 'action', 'claimed', 'detail', '{}')
redis.call('XADD', 'referral:changes', 'MAXLEN', '~', 10000, '*', 'case', id, 'action', 'claimed',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok'}
"""

# Hands a case to another counsellor, or back to the queue when ARGV[3] is empty.
_TRANSFER = """
local key = KEYS[1]
local id, actor, target, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local status = redis.call('HGET', key, 'status')
if status == 'closed' then return {'closed'} end
local holder = redis.call('HGET', key, 'claimed_by') or ''
if holder ~= '' then redis.call('ZREM', 'referral:mine:' .. holder, id) end
if target == '' then
  redis.call('HSET', key, 'status', 'waiting', 'claimed_by', '', 'claimed_at', '', 'updated_at', now)
  redis.call('ZREM', 'referral:claimed', id)
  redis.call('ZADD', 'referral:waiting:' .. redis.call('HGET', key, 'priority'), redis.call('HGET', key, 'opened_at'), id)
else
  redis.call('HSET', key, 'status', 'claimed', 'claimed_by', target, 'claimed_at', now, 'updated_at', now)
  redis.call('ZREM', 'referral:waiting:' .. redis.call('HGET', key, 'priority'), id)
  redis.call('ZADD', 'referral:claimed', now, id)
  redis.call('ZADD', 'referral:mine:' .. target, now, id)
end
redis.call('XADD', key .. ':audit', '*', 'at', now, 'actor', actor, 'action', 'transferred',
  'detail', cjson.encode({from = holder, to = target}))
redis.call('XADD', 'referral:changes', 'MAXLEN', '~', 10000, '*', 'case', id, 'action', 'transferred',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok'}
"""

# Closes a case with its outcome; the conversation goes back to the bot.
_CLOSE = """
local key = KEYS[1]
local id, actor, outcome, now, note = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
if redis.call('HGET', key, 'status') == 'closed' then return {'closed'} end
if note ~= '' then
  redis.call('XADD', key .. ':messages', '*', 'at', now, 'author', 'counsellor', 'kind', 'note',
    'actor', actor, 'text', note)
end
local holder = redis.call('HGET', key, 'claimed_by') or ''
redis.call('HSET', key, 'status', 'closed', 'outcome', outcome, 'closed_by', actor, 'closed_at', now,
  'updated_at', now)
local cid = redis.call('HGET', key, 'conversation_id')
if redis.call('GET', 'referral:open:' .. cid) == id then redis.call('DEL', 'referral:open:' .. cid) end
redis.call('ZREM', 'referral:waiting:' .. redis.call('HGET', key, 'priority'), id)
redis.call('ZREM', 'referral:claimed', id)
if holder ~= '' then redis.call('ZREM', 'referral:mine:' .. holder, id) end
redis.call('ZADD', 'referral:closed', now, id)
redis.call('XADD', key .. ':audit', '*', 'at', now, 'actor', actor, 'action', 'closed',
  'detail', cjson.encode({outcome = outcome, note = note ~= ''}))
redis.call('XADD', 'referral:changes', 'MAXLEN', '~', 10000, '*', 'case', id, 'action', 'closed',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok', cid}
"""

# Adds a person's message to an open case (the worker relays it while the bot is silent).
_APPEND = """
local key = KEYS[1]
local id, author, text, actor, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', key) == 0 then return {'missing'} end
if redis.call('HGET', key, 'status') == 'closed' then return {'closed'} end
local message = redis.call('XADD', key .. ':messages', '*', 'at', now, 'author', author, 'kind', 'message',
  'actor', actor, 'text', text)
redis.call('HSET', key, 'updated_at', now, 'last_person_at', now)
redis.call('XADD', key .. ':audit', '*', 'at', now, 'actor', actor, 'action', 'message_received', 'detail', '{}')
redis.call('XADD', 'referral:changes', 'MAXLEN', '~', 10000, '*', 'case', id, 'action', 'message_received',
  'priority', redis.call('HGET', key, 'priority'))
return {'ok', message}
"""


def _changed(pipe: redis.client.Pipeline, case_id: str, action: str) -> None:
    """Tell open consoles that a case changed (the Lua scripts do the same for theirs)."""
    pipe.xadd(CHANGES, {"case": case_id, "action": action}, maxlen=CHANGES_MAXLEN, approximate=True)


def _raise_for(result: list[Any], case_id: str) -> None:
    status = result[0]
    if status == "missing":
        raise CaseNotFound(case_id)
    if status == "closed":
        raise CaseClosed(case_id)
    if status == "claimed":
        raise AlreadyClaimed(case_id, result[1])


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

    def _now(self) -> str:
        return f"{self.clock():.6f}"

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
        lines newer than those already in the case are added.
        """
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}")
        now = self._now()
        evidence = json.dumps(list(indicators), ensure_ascii=False)
        level_rank = str(RISK_LEVELS.index(risk_level)) if risk_level in RISK_LEVELS else "0"
        rank = str(PRIORITIES.index(priority))
        fields = {
            "conversation_id": conversation_id, "channel": channel, "language": language,
            "priority": priority, "rank": rank, "status": "waiting", "risk_level": risk_level,
            "level_rank": level_rank, "indicators": evidence, "summary": summary,
            "about_other": "1" if about_other else "0", "consent": consent,
            "consent_at": now if consent else "", "trigger": trigger,
            "opened_at": now, "updated_at": now, "claimed_by": "",
        }
        update = {
            "risk_level": risk_level, "level_rank": level_rank, "indicators": evidence,
            "summary": summary, "about_other": fields["about_other"], "consent": consent,
        }
        case_id, created, current = self._open(
            keys=[open_key(conversation_id), SEQUENCE, conversation_cases_key(conversation_id)],
            args=[conversation_id, now, priority, rank, json.dumps(fields), json.dumps(update), actor],
        )
        self._copy_transcript(case_id, transcript)
        if created:
            log.info("case %s opened, priority %s", case_id, priority)
        return Opened(case_id, bool(created), current)

    def _copy_transcript(self, case_id: str, lines: Iterable[tuple[float, str, str]]) -> None:
        lines = [line for line in lines if line[2]]
        if not lines:
            return
        # Only what the case does not hold yet, so a second trigger adds no duplicates.
        known = self.db.hget(case_key(case_id), "transcript_until")
        since = float(known) if known else float("-inf")
        newer = sorted(line for line in lines if line[0] > since)
        if not newer:
            return
        with self.db.pipeline(transaction=True) as pipe:
            for at, author, text in newer:
                pipe.xadd(messages_key(case_id), {
                    "at": f"{at:.6f}", "author": author, "kind": "message", "actor": author, "text": text,
                })
            pipe.hset(case_key(case_id), "transcript_until", f"{newer[-1][0]:.6f}")
            pipe.execute()

    def open_case_id(self, conversation_id: str) -> str | None:
        """The conversation's open case, which its incoming messages go to instead of the bot."""
        return self.db.get(open_key(conversation_id))

    # ------------------------------------------------------------ the person's messages

    def append_message(self, case_id: str, *, author: str = "person", text: str, actor: str = "person") -> str:
        """Relay a message into an open case; raises CaseClosed if it was closed meanwhile
        (then the message belongs to the bot again)."""
        result = self._append(keys=[case_key(case_id)], args=[case_id, author, text, actor, self._now()])
        _raise_for(result, case_id)
        return result[1]

    # ------------------------------------------------------------ the counsellor's actions

    def claim(self, case_id: str, counsellor: str) -> Case:
        """Take a waiting case; AlreadyClaimed says who was first."""
        _raise_for(self._claim(keys=[case_key(case_id)], args=[case_id, counsellor, self._now()]), case_id)
        return self.get(case_id, transcript=False)

    def transfer(self, case_id: str, actor: str, to: str | None) -> Case:
        """Give a case to another counsellor, or back to the queue (to=None)."""
        result = self._transfer(keys=[case_key(case_id)], args=[case_id, actor, to or "", self._now()])
        _raise_for(result, case_id)
        return self.get(case_id, transcript=False)

    def reply(self, case_id: str, counsellor: str, text: str, *, any_holder: bool = False) -> str:
        """Send a counsellor's message to the person, on their channel, and keep it in the case.

        `any_holder`: a supervisor may step into a case another counsellor holds (it must
        still be claimed by someone, so it never sits in the waiting queue while answered).
        """
        if not text.strip():
            raise ReferralError("a reply cannot be empty")
        key = case_key(case_id)
        with self.db.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    state = pipe.hmget(key, "status", "claimed_by", "conversation_id")
                    status, holder, conversation_id = state
                    if status is None:
                        raise CaseNotFound(case_id)
                    if status == "closed":
                        raise CaseClosed(case_id)
                    if holder != counsellor and not (any_holder and holder):
                        raise NotYourCase(case_id, holder or None)
                    now = self._now()
                    pipe.multi()
                    pipe.xadd(messages_key(case_id), {
                        "at": now, "author": "counsellor", "kind": "message", "actor": counsellor, "text": text,
                    })
                    # The person only ever gets what is in the transcript, and vice versa.
                    conversations.queue_reply(pipe, conversation_id, text, source="counsellor", case_id=case_id)
                    pipe.hset(key, "updated_at", now)
                    pipe.xadd(audit_key(case_id), {"at": now, "actor": counsellor, "action": "replied", "detail": "{}"})
                    _changed(pipe, case_id, "replied")
                    message_id = pipe.execute()[0]
                    return message_id
                except redis.WatchError:
                    continue

    def note(self, case_id: str, counsellor: str, text: str) -> str:
        """An internal note: in the case for counsellors, never sent to the person."""
        if not self.db.exists(case_key(case_id)):
            raise CaseNotFound(case_id)
        now = self._now()
        with self.db.pipeline(transaction=True) as pipe:
            pipe.xadd(messages_key(case_id), {
                "at": now, "author": "counsellor", "kind": "note", "actor": counsellor, "text": text,
            })
            pipe.hset(case_key(case_id), "updated_at", now)
            pipe.xadd(audit_key(case_id), {"at": now, "actor": counsellor, "action": "noted", "detail": "{}"})
            _changed(pipe, case_id, "noted")
            return pipe.execute()[0]

    def close(self, case_id: str, counsellor: str, outcome: str, note: str | None = None) -> Case:
        """Close with an outcome code (OUTCOMES). Resuming the bot is referral.handback's job."""
        if outcome not in OUTCOMES:
            raise ReferralError(f"outcome must be one of: {', '.join(OUTCOMES)}")
        result = self._close(keys=[case_key(case_id)], args=[case_id, counsellor, outcome, self._now(), note or ""])
        _raise_for(result, case_id)
        log.info("case %s closed: %s", case_id, outcome)
        return self.get(case_id, transcript=False)

    # ------------------------------------------------------------ reading

    def get(self, case_id: str, transcript: bool = True) -> Case:
        """A case, with its transcript in time order unless asked not to."""
        raw = self.db.hgetall(case_key(case_id))
        if not raw:
            raise CaseNotFound(case_id)
        return _case(raw, self.transcript(case_id) if transcript else None)

    def transcript(self, case_id: str) -> list[Message]:
        entries = self.db.xrange(messages_key(case_id))
        lines = [
            Message(
                id=entry_id, at=float(f.get("at") or 0), author=f.get("author", ""),
                kind=f.get("kind", "message"), text=f.get("text", ""), actor=f.get("actor", ""),
            )
            for entry_id, f in entries
        ]
        # The bot part is copied in when the case opens, after messages it may postdate.
        return sorted(lines, key=lambda m: (m.at, m.id))

    def audit(self, case_id: str) -> list[AuditEvent]:
        return [
            AuditEvent(
                id=entry_id, at=float(f.get("at") or 0), actor=f.get("actor", ""),
                action=f.get("action", ""), detail=json.loads(f.get("detail") or "{}"),
            )
            for entry_id, f in self.db.xrange(audit_key(case_id))
        ]

    def _many(self, case_ids: list[str]) -> list[Case]:
        if not case_ids:
            return []
        with self.db.pipeline(transaction=False) as pipe:
            for case_id in case_ids:
                pipe.hgetall(case_key(case_id))
            raws = pipe.execute()
        return [_case(raw) for raw in raws if raw]

    def _waiting_ids(self, limit: int | None) -> list[str]:
        ids: list[str] = []
        for priority in PRIORITIES:
            if limit is not None and len(ids) >= limit:
                break
            end = -1 if limit is None else limit - len(ids) - 1
            ids += self.db.zrange(waiting_key(priority), 0, end)
        return ids

    def list_waiting(self, limit: int | None = None) -> list[Case]:
        """Waiting cases, emergency first, then high, then requests; oldest first within each."""
        return self._many(self._waiting_ids(limit))

    def list_claimed(self, limit: int | None = None) -> list[Case]:
        return self._many(self.db.zrange(CLAIMED, 0, -1 if limit is None else limit - 1))

    def list_open(self, limit: int | None = None) -> list[Case]:
        """Every case not closed: the waiting ones in queue order, then the claimed ones."""
        waiting = self._waiting_ids(limit)
        rest = None if limit is None else limit - len(waiting)
        claimed = [] if rest == 0 else self.db.zrange(CLAIMED, 0, -1 if rest is None else rest - 1)
        return self._many(waiting + claimed)

    def list_mine(self, counsellor: str, limit: int | None = None) -> list[Case]:
        return self._many(self.db.zrange(mine_key(counsellor), 0, -1 if limit is None else limit - 1))

    def count(self, tab: str, counsellor: str = "") -> int:
        """How many cases a queue tab holds (waiting, mine or open), without reading them."""
        with self.db.pipeline(transaction=False) as pipe:
            if tab in ("waiting", "open"):
                for priority in PRIORITIES:
                    pipe.zcard(waiting_key(priority))
            if tab == "open":
                pipe.zcard(CLAIMED)
            if tab == "mine":
                pipe.zcard(mine_key(counsellor))
            return sum(pipe.execute())

    def list_closed(self, limit: int = 100) -> list[Case]:
        """Most recently closed first."""
        return self._many(self.db.zrevrange(CLOSED, 0, limit - 1))

    def cases_of(self, conversation_id: str) -> list[str]:
        return sorted(self.db.smembers(conversation_cases_key(conversation_id)), key=lambda c: int(c[1:]))
