"""Every Redis key the hotline uses: one registry of key families, and the functions that build them.

A family is a kind of key (`hotline:conv:{conversation}` is one, `referral:changes` another).
The registry says who owns it, what it holds, how long it lives, whether it carries a
person's data, and how an erasure reaches it, so that erasure and retention (referral.privacy)
walk the registry instead of a list of their own: a new family that carries personal data
is erased the day it is registered, and tests/referral/test_keys.py fails when one is not.

Build keys only through this module (`keys.case(case_id)`, `keys.conversation(cid)`, ...);
tests/referral/test_keys.py fails on a key spelled by hand elsewhere. Lua scripts receive
every key they touch through KEYS, never a prefix of their own, so key-pattern ACLs (and, with
hash tags later, Redis Cluster) can see what a script touches.
"""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass
from typing import Literal

Kind = Literal["hash", "string", "set", "zset", "list", "stream", "pubsub"]


class Erasure(enum.Enum):
    """How erasing a person's conversation (and retention's purge) reaches a family."""

    DELETE = "delete"  # the conversation's (or its cases') key is deleted
    GRACE = "grace"  # emptied but for the sealed address, which expires after a short grace
    ENTRIES = "entries"  # a shared stream: the conversation's entries are deleted
    ANONYMISE = "anonymise"  # a case record: kept for statistics without anything personal
    FIELD = "field"  # records naming it in their conversation_id field: found by SCAN, deleted
    NONE = "none"  # holds nothing of the person (ids, counters, staff data, dev-only data)


@dataclass(frozen=True)
class KeyFamily:
    name: str
    pattern: str  # placeholders in braces: {conversation}, {case}, {counsellor}, ...
    owner: str  # the module that writes it
    kind: Kind
    holds: str
    expiry: str
    personal: bool  # carries something of a person who texts the hotline
    erasure: Erasure = Erasure.NONE

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.pattern) if name)

    @property
    def scope(self) -> str:
        """conversation, case, or shared (a key of its own, or keyed by something else)."""
        if "conversation" in self.parts:
            return "conversation"
        if "case" in self.parts:
            return "case"
        return "shared"

    @property
    def prefix(self) -> str:
        """The fixed start of every key of the family (the whole key when it has no parts)."""
        return self.pattern.split("{", 1)[0]

    def key(self, **parts: str) -> str:
        return self.pattern.format(**parts)

    def glob(self) -> str:
        """A SCAN MATCH pattern for every key of the family."""
        return self.pattern.format(**dict.fromkeys(self.parts, "*"))


# Rasa 3.6's RedisTrackerStore and RedisLockStore put "<key_prefix>:" in front of their own
# "tracker:" and "lock:"; endpoints.yml sets key_prefix to this (a test holds them equal).
RASA_PREFIX = "rasa"

FAMILIES: dict[str, KeyFamily] = {}


def _family(*args, **kwargs) -> KeyFamily:
    family = KeyFamily(*args, **kwargs)
    if family.name in FAMILIES:
        raise ValueError(f"key family {family.name} registered twice")
    FAMILIES[family.name] = family
    return family


# ---------------------------------------------------------------- conversations (hotline, channels)

CONVERSATION = _family(
    "conversation",
    "hotline:conv:{conversation}",
    "hotline.conversations",
    "hash",
    "channel, sealed address, language, opted_out, last_inbound",
    "none while the conversation lives; after an erasure the sealed address alone for a grace; "
    "deleted by the purge when quiet past retention",
    personal=True,
    erasure=Erasure.GRACE,
)
INBOUND = _family(
    "inbound",
    "hotline:inbound",
    "channels.inbound",
    "stream",
    "messages the gateway accepted: conversation id, sealed address, text",
    "an entry is deleted once answered or dead-lettered; MAXLEN ~1,000,000",
    personal=True,
    erasure=Erasure.ENTRIES,
)
OUTBOUND = _family(
    "outbound",
    "hotline:outbound",
    "hotline.conversations",
    "stream",
    "replies for the sender: conversation id, text, source, case id",
    "an entry is deleted once sent; MAXLEN ~1,000,000",
    personal=True,
    erasure=Erasure.ENTRIES,
)
DEAD_LETTERS = _family(
    "dead_letters",
    "hotline:dead",
    "channels.worker, channels.sender",
    "stream",
    "entries that kept failing, with their texts, for `hotline dlq`",
    "until an operator replays them (or erasure/purge removes them)",
    personal=True,
    erasure=Erasure.ENTRIES,
)
INBOUND_FAILURES = _family(
    "inbound_failures",
    "hotline:inbound:failures",
    "channels.worker",
    "hash",
    "inbound entry id -> how often handling it failed",
    "a field is deleted with its entry's acknowledgement",
    personal=False,
)
ORDER = _family(
    "order",
    "hotline:order:{conversation}",
    "channels.inbound",
    "list",
    "the conversation's inbound entry ids in arrival order (no text, no number)",
    "drained as the worker answers; an erasure leaves it so the confirmation's commit still "
    "finds its entry at the head, and the worker skips the erased entries after it",
    personal=False,
)
SEEN = _family(
    "seen",
    "hotline:seen:{kind}:{value}",
    "channels.inbound",
    "string",
    "a MessageSid (kind sid) or idempotency token already taken -> its entry id",
    "2 days (channels.inbound.SEEN_TTL)",
    personal=False,
)
DELETE_PENDING = _family(
    "delete_pending",
    "hotline:delete_pending:{conversation}",
    "channels.worker",
    "string",
    "the language a DELETE question was asked in, while it waits for YES",
    "10 minutes (channels.worker.DELETE_PENDING_TTL)",
    personal=True,
    erasure=Erasure.DELETE,
)
WAITING_NOTE = _family(
    "waiting_note",
    "hotline:waiting_note:{conversation}",
    "channels.worker",
    "string",
    "'1' once the conversation got its 'we received your message' while Rasa is away",
    "15 minutes (channels.worker.WAITING_NOTE_TTL)",
    personal=False,
    erasure=Erasure.DELETE,
)
MEDIA_NOTE = _family(
    "media_note",
    "hotline:media_note:{conversation}",
    "channels.worker",
    "string",
    "'1' once the conversation got its 'please write' note for a media-only message",
    "10 minutes (channels.worker.MEDIA_NOTE_TTL)",
    personal=False,
    erasure=Erasure.DELETE,
)
WAITING_ACK = _family(
    "waiting_ack",
    "hotline:waiting_ack:{conversation}",
    "channels.router",
    "string",
    "'1' once a person waiting for a counsellor was told their message is with a person",
    "the interval between two such notes (referral.waiting.ACK_INTERVAL)",
    personal=False,
    erasure=Erasure.DELETE,
)
DELIVERY = _family(
    "delivery",
    "hotline:msg:{record}",
    "channels.delivery",
    "hash",
    "one outgoing body: conversation id, channel, source, status, segments, error code (no text)",
    "90 days (channels.delivery.RECORD_TTL)",
    personal=True,
    erasure=Erasure.FIELD,
)
UNDELIVERED = _family(
    "undelivered",
    "hotline:undelivered",
    "channels.delivery",
    "zset",
    "delivery record ids an operator should look at, score = when",
    "none",
    personal=False,
)
SENDING = _family(
    "sending",
    "hotline:sending:{entry}",
    "channels.sender",
    "string",
    "how many bodies of an outbound run went out, so a retry does not repeat them",
    "24 hours (channels.sender.PROGRESS_TTL), deleted with the run's acknowledgement",
    personal=False,
)
TWILIO_ERASURES = _family(
    "twilio_erasures",
    "hotline:twilio:erasures",
    "referral.privacy",
    "stream",
    "numbers whose messages Twilio still keeps after an erasure: the sealed address (no "
    "conversation id), when to ask next, how often Twilio said not yet (channels.twilio_erasure)",
    "an entry is deleted once Twilio holds no message to or from the number, or after "
    "channels.twilio_erasure.GIVE_UP_AFTER",
    personal=True,
    erasure=Erasure.ENTRIES,
)
TWILIO_ERASING = _family(
    "twilio_erasing",
    "hotline:twilio:erasing",
    "channels.twilio_erasure",
    "string",
    "which sender is working through the Twilio erasures, so two do not ask twice",
    "channels.twilio_erasure.LEASE_SECONDS, renewed while it works",
    personal=False,
)

# ---------------------------------------------------------------- Rasa (written by the Rasa server)

TRACKER = _family(
    "tracker",
    f"{RASA_PREFIX}:tracker:{{conversation}}",
    "Rasa (endpoints.yml tracker_store)",
    "string",
    "the conversation's tracker: every message and event",
    "90 days after its last write (endpoints.yml record_exp); deleted by erasure and the purge",
    personal=True,
    erasure=Erasure.DELETE,
)
TRACKER_UNPREFIXED = _family(
    "tracker_unprefixed",
    "tracker:{conversation}",
    "Rasa (tracker_store without key_prefix)",
    "string",
    "the tracker as Rasa keys it when endpoints.yml loses its key_prefix",
    "none; deleted by erasure and by the purge in case it exists",
    personal=True,
    erasure=Erasure.DELETE,
)
RASA_LOCK = _family(
    "rasa_lock",
    f"{RASA_PREFIX}:lock:{{conversation}}",
    "Rasa (endpoints.yml lock_store)",
    "string",
    "Rasa's per-conversation ticket lock while it handles a message (no text)",
    "deleted by Rasa when the turn ends; lock lifetime 60 s",
    personal=False,
)

# ---------------------------------------------------------------- the referral queue

CASE_SEQUENCE = _family(
    "case_sequence",
    "referral:seq",
    "referral.queue",
    "string",
    "the last case number given (case ids are R<n>)",
    "none",
    personal=False,
)
CASE = _family(
    "case",
    "referral:case:{case}",
    "referral.queue",
    "hash",
    "the case: conversation id, channel, language, priority, status, risk, indicators with "
    "quoted phrases, summary, consent, who and when",
    "none; anonymised by erasure and by the purge after retention",
    personal=True,
    erasure=Erasure.ANONYMISE,
)
CASE_MESSAGES = _family(
    "case_messages",
    "referral:case:{case}:messages",
    "referral.queue",
    "stream",
    "the transcript: the bot part, the person's messages, replies and internal notes",
    "none; deleted by erasure and by the purge after retention",
    personal=True,
    erasure=Erasure.DELETE,
)
CASE_AUDIT = _family(
    "case_audit",
    "referral:case:{case}:audit",
    "referral.queue",
    "stream",
    "every change of the case: actor, action, when, detail (never a text)",
    "none: kept with the anonymous case for statistics",
    personal=False,
)
CASE_DELIVERY = _family(
    "case_delivery",
    "referral:case:{case}:delivery",
    "channels.sender",
    "hash",
    "delivery record id (keys.delivery) -> the refs of the case's transcript lines its body "
    "carried, space-separated: how the console finds an outgoing line's status (no text)",
    "none; deleted with the transcript by erasure and by the purge after retention",
    personal=False,
    erasure=Erasure.DELETE,
)
OPEN_CASE = _family(
    "open_case",
    "referral:open:{conversation}",
    "referral.queue",
    "string",
    "the conversation's open case id, which its messages go to instead of the bot",
    "deleted when the case closes",
    personal=True,
    erasure=Erasure.DELETE,
)
CONVERSATION_CASES = _family(
    "conversation_cases",
    "referral:conversation:{conversation}",
    "referral.queue",
    "set",
    "every case id of the conversation (how erasure finds them)",
    "none; deleted by erasure, emptied by the purge",
    personal=True,
    erasure=Erasure.DELETE,
)
WAITING = _family(
    "waiting",
    "referral:waiting:{priority}",
    "referral.queue",
    "zset",
    "waiting case ids of one priority, score = when opened",
    "none",
    personal=False,
)
CLAIMED = _family(
    "claimed",
    "referral:claimed",
    "referral.queue",
    "zset",
    "claimed case ids, score = when claimed",
    "none",
    personal=False,
)
MINE = _family(
    "mine",
    "referral:mine:{counsellor}",
    "referral.queue",
    "zset",
    "a counsellor's claimed case ids, score = when claimed",
    "none",
    personal=False,
)
CLOSED = _family(
    "closed",
    "referral:closed",
    "referral.queue",
    "zset",
    "closed case ids, score = when closed (what the purge walks)",
    "none",
    personal=False,
)
ANONYMOUS = _family(
    "anonymous",
    "referral:anonymous",
    "referral.privacy",
    "zset",
    "erased case ids kept for statistics, score = when closed",
    "none",
    personal=False,
)
CLOSED_DAY = _family(
    "closed_day",
    "referral:stats:closed:{zone}:{day}",
    "referral.stats",
    "hash",
    "a past day's closed cases counted by opening day, outcome and language, and how many "
    "case ids the count was made from",
    "expires when the day leaves the dashboard's 30-day window",
    personal=False,
)
CHANGES = _family(
    "changes",
    "referral:changes",
    "referral.queue",
    "stream",
    "one entry per change of any case (case id, action, priority), followed live by consoles",
    "MAXLEN ~10,000 (referral.queue.CHANGES_MAXLEN)",
    personal=False,
)
PRESENCE = _family(
    "presence",
    "referral:presence",
    "referral.rota",
    "zset",
    "counsellor name -> when their console presence lapses (staff data)",
    "members lapse by score",
    personal=False,
)

# ---------------------------------------------------------------- staff (accounts, console)

COUNSELLOR = _family(
    "counsellor",
    "hotline:counsellor:{counsellor}",
    "referral.accounts",
    "hash",
    "a counsellor's account: argon2 hash, role, language, active (staff data)",
    "none",
    personal=False,
)
COUNSELLORS = _family(
    "counsellors",
    "hotline:counsellors",
    "referral.accounts",
    "set",
    "every counsellor name",
    "none",
    personal=False,
)
LOGIN_FAILURES = _family(
    "login_failures",
    "hotline:login-failures:{counsellor}",
    "referral.accounts",
    "string",
    "wrong passwords for a name, for the lockout",
    "15 minutes (referral.accounts.LOCKOUT_SECONDS)",
    personal=False,
)
LOGIN_ATTEMPTS = _family(
    "login_attempts",
    "hotline:login-attempts:{address}",
    "referral.console.auth",
    "string",
    "sign-in attempts from one client address (a staff machine's IP)",
    "15 minutes (referral.console.auth.ADDRESS_WINDOW)",
    personal=False,
)
SESSION = _family(
    "session",
    "hotline:session:{digest}",
    "referral.console.sessions",
    "hash",
    "a console sign-in under the SHA-256 of its cookie: counsellor, CSRF token, a flash message",
    "30 minutes idle, 12 hours at most (referral.console.sessions)",
    personal=False,
)
SESSIONS_OF = _family(
    "sessions_of",
    "hotline:sessions-of:{counsellor}",
    "referral.console.sessions",
    "set",
    "a counsellor's session digests, so a reset or a disable ends them all",
    "as long as the sessions (referral.console.sessions)",
    personal=False,
)
ACCOUNT_TRAIL = _family(
    "account_trail",
    "hotline:audit:accounts",
    "referral.console.trail",
    "stream",
    "account events: added, disabled, password reset, signed in and out, refused (staff data)",
    "MAXLEN ~100,000 (referral.console.trail.ACCOUNT_TRAIL_LENGTH)",
    personal=False,
)
CASE_READ = _family(
    "case_read",
    "hotline:audit:read:{case}:{reader}",
    "referral.console.trail",
    "string",
    "'1' once a counsellor's reading of a case is in its audit trail",
    "10 minutes (referral.console.trail.READ_WINDOW_SECONDS)",
    personal=False,
)

# ---------------------------------------------------------------- operations and the dev sandbox

SUPERVISION = _family(
    "supervision",
    "hotline:supervision",
    "ops.supervision",
    "hash",
    "process name -> state, for /healthz",
    "15 seconds, refreshed (ops.supervision.STATE_TTL_SECONDS)",
    personal=False,
)
SANDBOX_MESSAGES = _family(
    "sandbox_messages",
    "sandbox:messages",
    "channels.sandbox",
    "list",
    "dev only: every sandbox message sid, newest first",
    "none (dev only)",
    personal=False,
)
SANDBOX_MESSAGE = _family(
    "sandbox_message",
    "sandbox:msg:{sid}",
    "channels.sandbox",
    "hash",
    "dev only: one message as Twilio would hold it (test phones, never a person)",
    "none (dev only)",
    personal=False,
)
SANDBOX_THREAD = _family(
    "sandbox_thread",
    "sandbox:thread:{address}",
    "channels.sandbox",
    "list",
    "dev only: a test phone's message sids",
    "none (dev only)",
    personal=False,
)
SANDBOX_EVENTS = _family(
    "sandbox_events",
    "sandbox:events",
    "channels.sandbox",
    "pubsub",
    "dev only: a channel announcing messages sent to test phones",
    "not stored",
    personal=False,
)
SANDBOX_OPTED_OUT = _family(
    "sandbox_opted_out",
    "sandbox:optout",
    "channels.sandbox",
    "set",
    "dev only: test numbers Twilio would refuse with 21610",
    "none (dev only)",
    personal=False,
)
SANDBOX_FAULTS = _family(
    "sandbox_faults",
    "sandbox:faults",
    "channels.sandbox",
    "hash",
    "dev only: faults the next creates imitate",
    "none (dev only)",
    personal=False,
)
SANDBOX_UNREACHABLE = _family(
    "sandbox_unreachable",
    "sandbox:unreachable",
    "channels.sandbox",
    "set",
    "dev only: test numbers whose messages end undelivered",
    "none (dev only)",
    personal=False,
)
SANDBOX_ATTEMPTS = _family(
    "sandbox_attempts",
    "sandbox:attempts",
    "channels.sandbox",
    "string",
    "dev only: how many creates were asked for",
    "none (dev only)",
    personal=False,
)


# ---------------------------------------------------------------- the registry's questions


def personal_families() -> list[KeyFamily]:
    return [family for family in FAMILIES.values() if family.personal]


def erased(scope: str, *ways: Erasure) -> list[KeyFamily]:
    """The families of a scope that an erasure reaches in one of these ways."""
    return [f for f in FAMILIES.values() if f.scope == scope and f.erasure in ways]


# ---------------------------------------------------------------- building keys

# Single keys, named as the code uses them.
INBOUND_STREAM = INBOUND.pattern
OUTBOUND_STREAM = OUTBOUND.pattern
DEAD_LETTER_STREAM = DEAD_LETTERS.pattern
INBOUND_FAILURES_KEY = INBOUND_FAILURES.pattern
UNDELIVERED_KEY = UNDELIVERED.pattern
TWILIO_ERASURES_STREAM = TWILIO_ERASURES.pattern
TWILIO_ERASING_KEY = TWILIO_ERASING.pattern
CASE_SEQUENCE_KEY = CASE_SEQUENCE.pattern
CLAIMED_KEY = CLAIMED.pattern
CLOSED_KEY = CLOSED.pattern
ANONYMOUS_KEY = ANONYMOUS.pattern
CHANGES_STREAM = CHANGES.pattern
PRESENCE_KEY = PRESENCE.pattern
COUNSELLORS_KEY = COUNSELLORS.pattern
SUPERVISION_KEY = SUPERVISION.pattern
ACCOUNT_TRAIL_STREAM = ACCOUNT_TRAIL.pattern
SANDBOX_MESSAGES_KEY = SANDBOX_MESSAGES.pattern
SANDBOX_EVENTS_CHANNEL = SANDBOX_EVENTS.pattern
SANDBOX_OPTED_OUT_KEY = SANDBOX_OPTED_OUT.pattern
SANDBOX_FAULTS_KEY = SANDBOX_FAULTS.pattern
SANDBOX_UNREACHABLE_KEY = SANDBOX_UNREACHABLE.pattern
SANDBOX_ATTEMPTS_KEY = SANDBOX_ATTEMPTS.pattern


def conversation(conversation_id: str) -> str:
    return CONVERSATION.key(conversation=conversation_id)


def order(conversation_id: str) -> str:
    return ORDER.key(conversation=conversation_id)


def seen(kind: str, value: str) -> str:
    return SEEN.key(kind=kind, value=value)


def delete_pending(conversation_id: str) -> str:
    return DELETE_PENDING.key(conversation=conversation_id)


def waiting_note(conversation_id: str) -> str:
    return WAITING_NOTE.key(conversation=conversation_id)


def media_note(conversation_id: str) -> str:
    return MEDIA_NOTE.key(conversation=conversation_id)


def delivery(record_id: str) -> str:
    return DELIVERY.key(record=record_id)


def sending(entry_id: str) -> str:
    return SENDING.key(entry=entry_id)


def tracker(conversation_id: str) -> str:
    return TRACKER.key(conversation=conversation_id)


def rasa_lock(conversation_id: str) -> str:
    return RASA_LOCK.key(conversation=conversation_id)


def closed_day(zone: str, day: float) -> str:
    return CLOSED_DAY.key(zone=zone, day=f"{day:.0f}")


def case(case_id: str) -> str:
    return CASE.key(case=case_id)


def case_messages(case_id: str) -> str:
    return CASE_MESSAGES.key(case=case_id)


def case_audit(case_id: str) -> str:
    return CASE_AUDIT.key(case=case_id)


def case_delivery(case_id: str) -> str:
    return CASE_DELIVERY.key(case=case_id)


def open_case(conversation_id: str) -> str:
    return OPEN_CASE.key(conversation=conversation_id)


def conversation_cases(conversation_id: str) -> str:
    return CONVERSATION_CASES.key(conversation=conversation_id)


def waiting(priority: str) -> str:
    return WAITING.key(priority=priority)


def mine(counsellor: str) -> str:
    return MINE.key(counsellor=counsellor)


def counsellor(name: str) -> str:
    return COUNSELLOR.key(counsellor=name)


def login_failures(name: str) -> str:
    return LOGIN_FAILURES.key(counsellor=name)


def login_attempts(address: str) -> str:
    return LOGIN_ATTEMPTS.key(address=address)


def session(digest: str) -> str:
    return SESSION.key(digest=digest)


def sessions_of(counsellor: str) -> str:
    return SESSIONS_OF.key(counsellor=counsellor)


def case_read(case_id: str, reader: str) -> str:
    return CASE_READ.key(case=case_id, reader=reader)


def sandbox_message(sid: str) -> str:
    return SANDBOX_MESSAGE.key(sid=sid)


def sandbox_thread(address: str) -> str:
    return SANDBOX_THREAD.key(address=address)


def waiting_ack(conversation_id: str) -> str:
    return WAITING_ACK.key(conversation=conversation_id)
