"""Erasure: a person's texts and number leave the tracker, the streams, the cases and the disk.

On request (DELETE, APAGAR, SUPPRIMER, FUTA, confirmed) and, for closed cases, after the
retention period (`hotline purge --older-than 90d`). What stays is an anonymous case record
(channel, language, priority, risk level, indicator names, outcome, times, audit trail) for
statistics: no conversation id, no message text, no number.

Deleting keys is not enough while Redis keeps its append-only file: every write since the last
rewrite is in it, and XDEL only flags a stream entry inside its listpack, whose bytes then go
into the next RDB snapshot and the AOF's RDB preamble. So after an erasure, and after a purge
that removed something, the shared streams are rebuilt from their live entries and the AOF is
rewritten (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import httpx
import redis

from hotline import keys
from hotline.ids import seal, unseal
from hotline.keys import KeyFamily
from hotline.rasa import RasaClient, RasaUnavailable
from hotline.settings import get_settings
from referral.queue import CHANGES_MAXLEN, Case, Referrals

log = logging.getLogger(__name__)

# Everything erasure and the purge touch comes from the registry (hotline.keys): a family
# registered as personal is reached the day it is added, in the way its `erasure` says.
# The sealed number outlives an erasure by this long, so the sender can still deliver the
# confirmation ("your data was deleted") that the worker queues; then Redis expires it.
ADDRESS_GRACE_SECONDS = 600
# What a GRACE family keeps through its grace: how to deliver that confirmation.
_GRACE_FIELDS = ("address", "channel")
# The queue's own indexes of a conversation's cases: the purge takes its cases out of them one
# by one (a quiet conversation may still have a case inside retention), Redis drops them empty.
_CASE_INDEXES = (keys.OPEN_CASE, keys.CONVERSATION_CASES)
# Rasa's trackers, to say whether one was deleted.
_TRACKERS = (keys.TRACKER, keys.TRACKER_UNPREFIXED)
_BATCH = 500
# How long an erasure waits for Redis to have rewritten its files before it says so in the log
# (the erasure itself is done by then; only the disk lags).
DISK_TIMEOUT_SECONDS = 60.0

# Rebuilds a stream from its live entries, so the bytes of deleted ones are gone from memory
# and from whatever Redis writes next (RDB snapshot, AOF preamble). What readers rely on stays
# as it was: entry ids, the id counters, every consumer group with its last-delivered id, its
# consumers and their pending entries (delivery time and count). Pending entries whose stream
# entry was deleted leave the pending lists, as XAUTOCLAIM would drop them. One script, so no
# write lands in between.
_COMPACT_STREAM = """
local key = KEYS[1]
if redis.call('TYPE', key)['ok'] ~= 'stream' then return -1 end
local function map(flat)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end
local stream = map(redis.call('XINFO', 'STREAM', key, 'FULL', 'COUNT', 0))
if stream['entries-added'] == 0 then return 0 end
local groups = {}
for i, group in ipairs(stream['groups']) do groups[i] = map(group) end
redis.call('DEL', key)
for _, entry in ipairs(stream['entries']) do
  redis.call('XADD', key, entry[1], unpack(entry[2]))
end
if #stream['entries'] == 0 then
  -- An empty stream keeps its counters: made with one placeholder entry, trimmed at once.
  redis.call('XADD', key, 'MAXLEN', '0', stream['last-generated-id'], 'compacted', '1')
end
redis.call('XSETID', key, stream['last-generated-id'],
  'ENTRIESADDED', stream['entries-added'], 'MAXDELETEDID', stream['max-deleted-entry-id'])
for _, group in ipairs(groups) do
  if group['entries-read'] then
    redis.call('XGROUP', 'CREATE', key, group['name'], group['last-delivered-id'],
      'ENTRIESREAD', group['entries-read'])
  else
    redis.call('XGROUP', 'CREATE', key, group['name'], group['last-delivered-id'])
  end
  for _, consumer in ipairs(group['consumers']) do
    redis.call('XGROUP', 'CREATECONSUMER', key, group['name'], map(consumer)['name'])
  end
  for _, pending in ipairs(group['pending']) do
    redis.call('XCLAIM', key, group['name'], pending[2], 0, pending[1],
      'TIME', pending[3], 'RETRYCOUNT', pending[4], 'FORCE', 'JUSTID')
  end
end
return #stream['entries']
"""


class ErasureIncomplete(Exception):
    """Rasa still returns the conversation's messages after its tracker key was deleted."""


@dataclass(frozen=True)
class Erasure:
    cases: int
    stream_entries: int
    tracker_deleted: bool
    on_disk: bool = False  # Redis's files were rewritten without the erased data


def _address(db: redis.Redis, conversation_id: str, fernet_key: str | None) -> str | None:
    sealed = db.hget(keys.conversation(conversation_id), "address")
    if not sealed:
        return None
    key = fernet_key if fernet_key is not None else get_settings().fernet_key.get_secret_value()
    try:
        return unseal(sealed, key)
    except ValueError:
        log.warning(
            "cannot open the sealed address; stream entries are matched by conversation id only"
        )
        return None


# Twilio refuses to delete a message until it has finished with it (error 20009) and asks for
# a minute at least after it was sent or received: the erasure's own confirmation is the
# last such message, so the first request waits that long (channels.twilio_erasure retries).
TWILIO_FIRST_ASK_SECONDS = 90.0


def ask_twilio_to_forget(db: redis.Redis, sealed_address: str, now: float | None = None) -> None:
    """Queue the deletion of every message to and from this number that Twilio keeps.

    Twilio stores each message's body and number until its Message resource is deleted. Only
    the sender holds the Twilio token, so the erasure leaves it the sealed address to do so.
    """
    due = (time.time() if now is None else now) + TWILIO_FIRST_ASK_SECONDS
    # No conversation id: once erased, nothing may link the conversation to this entry.
    db.xadd(
        keys.TWILIO_ERASURES_STREAM,
        {
            "address": sealed_address,
            "due": f"{due:.3f}",
            "asked": "0",
            "since": f"{due:.3f}",
        },
    )


def _reseal(address: str, fernet_key: str | None) -> str:
    """Sealed afresh for the Twilio queue, whose entry outlives the conversation's own copy."""
    return seal(address, fernet_key or get_settings().fernet_key.get_secret_value())


def _address_forms(address: str) -> set[str]:
    bare = address.removeprefix("whatsapp:")
    return {address, bare, f"whatsapp:{bare}"}


def streams() -> list[str]:
    """The shared streams whose entries can carry a person's texts or number."""
    return [family.pattern for family in keys.erased("shared", keys.Erasure.ENTRIES)]


def anonymise_case(db: redis.Redis, case_id: str, now: float | None = None) -> None:
    """Keep the case for statistics, without its transcript, conversation id or quoted words."""
    raw = db.hgetall(keys.case(case_id))
    if not raw or raw.get("erased_at"):
        return
    now = time.time() if now is None else now
    names = [
        {"name": item.get("name"), "message_index": item.get("message_index")}
        for item in json.loads(raw.get("indicators") or "[]")
    ]
    with db.pipeline(transaction=True) as pipe:
        for family in keys.erased("case", keys.Erasure.DELETE):
            pipe.delete(family.key(case=case_id))
        for family in keys.erased("case", keys.Erasure.ANONYMISE):
            _anonymise(pipe, family, case_id, names, now)
        pipe.zrem(keys.CLOSED_KEY, case_id)
        pipe.zadd(keys.ANONYMOUS_KEY, {case_id: float(raw.get("closed_at") or now)})
        pipe.xadd(
            keys.case_audit(case_id),
            {
                "at": f"{now:.6f}",
                "actor": "privacy",
                "action": "erased",
                "detail": "{}",
            },
        )
        pipe.execute()


def _anonymise(
    pipe: redis.client.Pipeline, family: KeyFamily, case_id: str, names: list, now: float
) -> None:
    if family is not keys.CASE:
        raise NotImplementedError(f"no way to anonymise key family {family.name}")
    key = family.key(case=case_id)
    pipe.hdel(key, "conversation_id", "transcript_until")
    pipe.hset(key, mapping={"indicators": json.dumps(names), "erased_at": f"{now:.6f}"})


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _not_yet_sent(db: redis.Redis, stream: str):
    """Entries some consumer group has not acknowledged: the sender still needs them."""
    try:
        groups = db.xinfo_groups(stream)
    except redis.ResponseError:
        return lambda entry_id: False
    delivered, pending = [], set()
    for group in groups:
        delivered.append(_stream_id(group["last-delivered-id"]))
        if group.get("pending"):
            for item in db.xpending_range(stream, group["name"], "-", "+", group["pending"]):
                pending.add(item["message_id"])
    return lambda entry_id: entry_id in pending or any(_stream_id(entry_id) > d for d in delivered)


def erase_from_streams(db: redis.Redis, conversation_ids: set[str], addresses: set[str]) -> int:
    """Delete stream entries of these conversations (by id, or by number in the gateway's entries).

    Outgoing messages the sender has not handled yet are left to it, so a confirmation queued
    just before the erasure still goes out.
    """
    numbers = set().union(*(_address_forms(a) for a in addresses)) if addresses else set()
    deleted = 0
    for stream in streams():
        keep = (
            _not_yet_sent(db, stream)
            if stream == keys.OUTBOUND_STREAM
            else (lambda entry_id: False)
        )
        start = "-"
        while True:
            entries = db.xrange(stream, min=start, max="+", count=_BATCH)
            doomed = [
                entry_id
                for entry_id, fields in entries
                if (
                    fields.get("conversation_id") in conversation_ids
                    or numbers & set(fields.values())
                )
                and not keep(entry_id)
            ]
            if doomed:
                deleted += db.xdel(stream, *doomed)
            if len(entries) < _BATCH:
                break
            start = "(" + entries[-1][0]
    return deleted


def compact_streams(db: redis.Redis) -> None:
    """Rebuild every shared stream that can carry a person's words, without its deleted entries.

    All of them, whether or not this erasure deleted from them: the person's earlier messages
    were deleted (flagged) when the worker and the sender were done with them, and their bytes
    are still in the stream's listpacks.
    """
    compact = db.register_script(_COMPACT_STREAM)
    for stream in streams():
        compact(keys=[stream])


def _persistence(db: redis.Redis) -> dict:
    return db.info("persistence")


@dataclass(frozen=True)
class _Writing:
    """One kind of file Redis writes in a child process, as INFO persistence reports it."""

    started: str  # counts them as they start
    running: str
    scheduled: str | None
    status: str


_AOF = _Writing(
    "aof_rewrites", "aof_rewrite_in_progress", "aof_rewrite_scheduled", "aof_last_bgrewrite_status"
)
_RDB = _Writing("rdb_saves", "rdb_bgsave_in_progress", None, "rdb_last_bgsave_status")


def _written_afresh(db: redis.Redis, kind: _Writing, start, deadline: float) -> bool:
    """Wait for a file written by a child that started after this call; start one if need be.

    One already running began before, from data that may hold what was just erased, so it does
    not count; one another erasure started meanwhile does (they coalesce).
    """
    started_before = int(_persistence(db).get(kind.started, 0))
    while time.monotonic() < deadline:
        info = _persistence(db)
        ours = int(info.get(kind.started, 0)) > started_before
        if ours and not info.get(kind.running):
            if info.get(kind.status) == "ok":
                return True
            # That one failed (a full disk, a fork refused): ask for another.
            started_before = int(info.get(kind.started, 0))
            ours = False
        waiting = info.get(kind.running) or (kind.scheduled and info.get(kind.scheduled))
        if not ours and not waiting:
            try:
                # Started now, or scheduled to start when another child is done.
                start()
            except redis.ResponseError as error:
                if "already in progress" not in str(error):
                    raise
        time.sleep(0.05)
    return False


def rewrite_files(db: redis.Redis, timeout: float = DISK_TIMEOUT_SECONDS) -> bool:
    """Have Redis's files hold only what is in memory now; True once they do.

    The append-only file is rewritten (Redis then deletes the former files); a server that also
    takes RDB snapshots (`save` points; ours has none) writes a fresh dump.rdb as well.
    """
    deadline = time.monotonic() + timeout
    if _persistence(db).get("aof_enabled") and not _written_afresh(
        db, _AOF, db.bgrewriteaof, deadline
    ):
        log.warning("Redis did not rewrite its append-only file within %.0f s", timeout)
        return False
    try:
        takes_snapshots = bool(db.config_get("save").get("save"))
    except redis.ResponseError:
        # Not allowed to read the server's settings: its snapshots are the operator's care.
        takes_snapshots = False
    if takes_snapshots and not _written_afresh(
        db, _RDB, lambda: db.bgsave(schedule=True), deadline
    ):
        log.warning("Redis did not write a fresh snapshot within %.0f s", timeout)
        return False
    return True


def erase_from_disk(db: redis.Redis, timeout: float = DISK_TIMEOUT_SECONDS) -> bool:
    """After keys and entries are deleted: rebuild the streams, then rewrite Redis's files."""
    compact_streams(db)
    try:
        return rewrite_files(db, timeout)
    except redis.exceptions.NoPermissionError:
        # The erasure in memory stands; the files keep the bytes until Redis rewrites them.
        log.error(
            "this Redis user may not rewrite the files (needs BGREWRITEAOF, BGSAVE, INFO, "
            "CONFIG GET): erased data stays on disk until the next rewrite"
        )
        return False


def erase_records(db: redis.Redis, conversation_ids: set[str]) -> int:
    """Delete the records that name these conversations in their conversation_id field.

    They are found by SCAN (erasure is rare, and the records expire on their own anyway).
    """
    deleted = 0
    for family in keys.erased("shared", keys.Erasure.FIELD):
        batch: list[str] = []
        for key in db.scan_iter(match=family.glob(), count=1000):
            batch.append(key)
            if len(batch) >= _BATCH:
                deleted += _delete_named(db, batch, conversation_ids)
                batch = []
        if batch:
            deleted += _delete_named(db, batch, conversation_ids)
    return deleted


def _delete_named(db: redis.Redis, batch: list[str], conversation_ids: set[str]) -> int:
    with db.pipeline(transaction=False) as pipe:
        for key in batch:
            pipe.hget(key, "conversation_id")
        owners = pipe.execute()
    doomed = [key for key, owner in zip(batch, owners, strict=True) if owner in conversation_ids]
    return db.delete(*doomed) if doomed else 0


def _delete_conversation_keys(
    db: redis.Redis, conversation_id: str, *, skip: tuple[KeyFamily, ...] = ()
) -> bool:
    """Delete every DELETE family of the conversation; True when a Rasa tracker was among them."""
    families = [f for f in keys.erased("conversation", keys.Erasure.DELETE) if f not in skip]
    with db.pipeline(transaction=False) as pipe:
        for family in families:
            pipe.delete(family.key(conversation=conversation_id))
        deleted = pipe.execute()
    return any(n for family, n in zip(families, deleted, strict=True) if family in _TRACKERS)


def _forget_conversation(db: redis.Redis, conversation_id: str, *, grace: bool = True) -> None:
    """Drop what the channels keep about the conversation; the sealed number only after a grace."""
    for family in keys.erased("conversation", keys.Erasure.GRACE):
        key = family.key(conversation=conversation_id)
        fields = db.hkeys(key)
        if not grace or "address" not in fields:
            db.delete(key)
            continue
        with db.pipeline(transaction=True) as pipe:
            extra = [f for f in fields if f not in _GRACE_FIELDS]
            if extra:
                pipe.hdel(key, *extra)
            pipe.expire(key, ADDRESS_GRACE_SECONDS)
            pipe.execute()


async def _confirm_tracker_gone(rasa: RasaClient, conversation_id: str) -> None:
    try:
        tracker = await rasa.tracker(conversation_id)
    except (RasaUnavailable, httpx.HTTPError):
        log.warning("Rasa did not answer; the tracker key was deleted but not confirmed gone")
        return
    if any(event.get("event") == "user" for event in (tracker or {}).get("events") or []):
        raise ErasureIncomplete(
            "Rasa still has this conversation's messages; check the tracker key prefix"
        )


async def erase_conversation(
    db: redis.Redis, rasa: RasaClient, conversation_id: str, *, fernet_key: str | None = None
) -> Erasure:
    """Erase one person's conversation everywhere.

    An open case is not closed silently: whoever holds the phone (often the exploiter) can
    send DELETE then YES. The consoles are alerted (the change stream says the case was
    erased while open, with its priority) and the case stays as a minimal safety record:
    anonymised like every erased case, it keeps its priority, risk level and the names of
    its indicators, with an audit line saying what happened and who held it.
    """
    referrals = Referrals(db)
    address = _address(db, conversation_id, fernet_key)
    case_ids = referrals.cases_of(conversation_id)
    for case_id in case_ids:
        case = referrals.get(case_id, transcript=False)
        if case.is_open:
            _alert_erased_while_open(db, case)
            referrals.close(case_id, "person", "declined")
        anonymise_case(db, case_id)
    tracker_deleted = _delete_conversation_keys(db, conversation_id)
    entries = erase_from_streams(db, {conversation_id}, {address} if address else set())
    if address:  # after the streams, which it is one of
        ask_twilio_to_forget(db, _reseal(address, fernet_key))
    # A SCAN over many records: off the event loop, so the worker's other conversations go on.
    await asyncio.to_thread(erase_records, db, {conversation_id})
    _forget_conversation(db, conversation_id)
    await _confirm_tracker_gone(rasa, conversation_id)
    # Blocking (a fork, a rewrite): off the event loop too.
    on_disk = await asyncio.to_thread(erase_from_disk, db)
    log.info(
        "conversation erased: %d case(s), %d stream entries, files rewritten: %s",
        len(case_ids),
        entries,
        "yes" if on_disk else "not yet",
    )
    return Erasure(len(case_ids), entries, tracker_deleted, on_disk)


ERASED_WHILE_OPEN = "erased_while_open"  # the audit and change-stream action


def _alert_erased_while_open(db: redis.Redis, case: Case) -> None:
    now = f"{time.time():.6f}"
    detail = {
        "priority": case.priority,
        "risk_level": case.risk_level,
        "status": case.status,
        "claimed_by": case.claimed_by or "",
    }
    with db.pipeline(transaction=True) as pipe:
        pipe.xadd(
            keys.case_audit(case.id),
            {
                "at": now,
                "actor": "person",
                "action": ERASED_WHILE_OPEN,
                "detail": json.dumps(detail),
            },
        )
        pipe.xadd(
            keys.CHANGES_STREAM,
            {"case": case.id, "action": ERASED_WHILE_OPEN, "priority": case.priority},
            maxlen=CHANGES_MAXLEN,
            approximate=True,
        )
        pipe.execute()
    log.warning(
        "case %s (%s) was erased at the person's request while open; consoles alerted",
        case.id,
        case.priority,
    )


def _conversations(db: redis.Redis):
    """Every conversation that has its state hash (where `last_inbound` lives)."""
    prefix = keys.CONVERSATION.prefix
    for key in db.scan_iter(match=keys.CONVERSATION.glob(), count=1000):
        yield key[len(prefix) :]


def _named_by_old_dead_letters(db: redis.Redis, cutoff: float) -> set[str]:
    """Conversations a dead letter older than the cut-off names. A person whose first message
    was dead-lettered never got a state hash, so only its dead letter says it exists."""
    named = set()
    for entry_id, fields in db.xrange(keys.DEAD_LETTER_STREAM):
        # The worker stamps failed_at; else the time Redis put in the entry id.
        failed_at = float(fields.get("failed_at") or _stream_id(entry_id)[0] / 1000)
        if failed_at < cutoff and fields.get("conversation_id"):
            named.add(fields["conversation_id"])
    return named


def _quiet_since(db: redis.Redis, conversation_id: str) -> float | None:
    """When the person last wrote; None while an erasure's grace runs (it ends on its own)."""
    key = keys.conversation(conversation_id)
    with db.pipeline(transaction=False) as pipe:
        pipe.hget(key, "last_inbound")
        pipe.ttl(key)
        last_inbound, ttl = pipe.execute()
    if ttl is not None and ttl > 0:
        return None
    # No state at all, or state from before last_inbound was kept: quiet since ever.
    return float(last_inbound or 0)


def purge(
    db: redis.Redis,
    older_than_seconds: float,
    *,
    now: float | None = None,
    fernet_key: str | None = None,
) -> int:
    """Retention: anonymise cases closed before the cut-off, forget conversations quiet since.

    Returns how many closed cases were anonymised. Every conversation whose person has not
    written since the cut-off (`last_inbound`), whether or not it ever became a case, loses
    its tracker, sealed number, stream entries, dead letters and delivery records: each
    family the registry (hotline.keys) marks as erased, in the way it says. A conversation
    with an open case (waiting or claimed) is never purged: a counsellor closes it first.
    A case closed inside retention keeps its transcript until its own time comes.
    """
    now = time.time() if now is None else now
    cutoff = now - older_than_seconds
    referrals = Referrals(db)
    case_ids = db.zrangebyscore(keys.CLOSED_KEY, "-inf", cutoff)
    candidates: set[str] = set(_conversations(db)) | _named_by_old_dead_letters(db, cutoff)
    for case_id in case_ids:
        conversation_id = db.hget(keys.case(case_id), "conversation_id")
        if conversation_id:
            candidates.add(conversation_id)
        anonymise_case(db, case_id, now)
        if conversation_id:
            db.srem(keys.conversation_cases(conversation_id), case_id)
    quiet: set[str] = set()
    held_open = 0
    for conversation_id in candidates:
        last_seen = _quiet_since(db, conversation_id)
        if last_seen is None or last_seen >= cutoff:
            continue
        if referrals.open_case_id(conversation_id):
            held_open += 1
            continue
        quiet.add(conversation_id)
    addresses = {a for a in (_address(db, cid, fernet_key) for cid in quiet) if a}
    for conversation_id in quiet:
        _delete_conversation_keys(db, conversation_id, skip=_CASE_INDEXES)
        _forget_conversation(db, conversation_id, grace=False)
    if quiet:
        erase_from_streams(db, quiet, addresses)
        erase_records(db, quiet)
        for address in addresses:
            ask_twilio_to_forget(db, _reseal(address, fernet_key), now)
    if case_ids or quiet:
        erase_from_disk(db)
    if held_open:
        log.warning(
            "%d conversation(s) quiet past retention are kept for their open case: "
            "close the case in the console",
            held_open,
        )
    log.info("purged %d closed case(s), %d quiet conversation(s)", len(case_ids), len(quiet))
    return len(case_ids)
