"""The worker: takes people's messages off the inbound stream and gets them answered.

For each message, in conversation order: reserved keywords first (STOP, START, HELP, a
language pick, DELETE), then the language, then either the open referral case (a counsellor
answers; the bot stays silent) or Rasa. Handling a message only reads; everything it decides
to write (how to reach the person, their language, opt-out, replies, the short-lived notes) is
gathered in an `Outcome` and written in the same Redis transaction that acknowledges the
message, so a message is answered once and a failure half-way writes nothing. Two writes are
not the worker's own: the relay into an open case (one script of the referral queue) and an
erasure (referral.privacy), each atomic in itself.
Run it with `python -m channels.worker`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis

from channels import keywords as kw
from channels.consumer import Entry, StreamConsumer, run_forever, where
from channels.inbound import InboundEntry
from hotline import conversations, keys
from hotline.conversations import Channel, Source
from hotline.keys import DEAD_LETTER_STREAM, INBOUND_STREAM
from hotline.language import choose_language
from hotline.logs import setup_logging
from hotline.rasa import RasaClient, RasaUnavailable
from hotline.settings import Settings, get_settings
from referral.queue import CaseClosed, Referrals

log = logging.getLogger("channels.worker")  # also when run as __main__

GROUP = "workers"
MAX_FAILURES = 5  # a message failing this often (not counting Rasa being down) is dead-lettered
FAILURES = keys.INBOUND_FAILURES_KEY
DELETE_PENDING_TTL = 600  # a DELETE waits this long for its YES
WAITING_NOTE_TTL = 900  # one "we received your message" per conversation per outage
MEDIA_NOTE_TTL = 600  # ten photos in a row get one "please write" note, not ten


# Kept: tests and tools name them so.
delete_pending_key = keys.delete_pending
waiting_note_key = keys.waiting_note
media_note_key = keys.media_note


class RasaWaiting(Exception):
    """Rasa is down or too slow: the message waits in the stream."""


@dataclass
class Outcome:
    """Every write handling one message decided, applied in one transaction (`apply`): with the
    acknowledgement when the message is done, or at once for a note while it waits for Rasa."""

    remember: tuple[Channel, str] | None = None  # channel and sealed address; None once erased
    replies: list[tuple[str, Source]] = field(default_factory=list)
    set_fields: dict[str, str] = field(default_factory=dict)
    del_fields: list[str] = field(default_factory=list)
    set_keys: dict[str, tuple[str, int]] = field(default_factory=dict)
    del_keys: list[str] = field(default_factory=list)

    def say(self, text: str, source: Source = "system") -> None:
        self.replies.append((text, source))

    def apply(self, pipe: redis.client.Pipeline, cid: str) -> None:
        """Add the writes to a transaction (the caller executes it)."""
        if self.remember:
            channel, sealed = self.remember
            conversations.remember(pipe, cid, channel=channel, sealed_address=sealed)
        for text, source in self.replies:
            conversations.queue_reply(pipe, cid, text, source=source)
        if self.set_fields:
            pipe.hset(keys.conversation(cid), mapping=self.set_fields)
        if self.del_fields:
            pipe.hdel(keys.conversation(cid), *self.del_fields)
        for name, (value, ttl) in self.set_keys.items():
            pipe.set(name, value, ex=ttl)
        if self.del_keys:
            pipe.delete(*self.del_keys)


Eraser = Callable[[redis.Redis, RasaClient, str], Awaitable[object]]


def _default_eraser(settings: Settings) -> Eraser:
    from referral.privacy import erase_conversation

    async def erase(db: redis.Redis, rasa: RasaClient, cid: str) -> object:
        return await erase_conversation(
            db, rasa, cid, fernet_key=settings.fernet_key.get_secret_value()
        )

    return erase


class Worker(StreamConsumer):
    stream = INBOUND_STREAM
    group = GROUP

    def __init__(
        self,
        settings: Settings,
        *,
        rasa: RasaClient | None = None,
        eraser: Eraser | None = None,
        slow_after: float = 10.0,
        max_failures: int = MAX_FAILURES,
        **options,
    ) -> None:
        super().__init__(settings, **options)
        self.max_failures = max_failures
        self.rasa = rasa or RasaClient(settings)
        self.eraser = eraser or _default_eraser(settings)
        self.slow_after = slow_after
        self.keywords = kw.load(settings.data_dir / "keywords.yml")
        self.referrals = Referrals(self.db)

    async def handle(self, entries: list[Entry]) -> None:
        for entry in entries:
            await self.handle_one(entry)

    async def handle_one(self, entry: Entry) -> None:
        """Answer one message, or leave it pending and try it again later; never lose it.

        A message that has to wait (Rasa away, Redis restarting, an earlier message of its
        conversation not done yet) is put back without holding up its shard, so the other
        conversations go on, and each of them gets its own "we received your message" note.
        """
        if self.stopping:
            self.done(entry)  # still pending in the group: the next worker answers it
            return
        try:
            turn = self._turn(entry)
            if turn == "later":
                entry.defers += 1
                self.put_back(entry, min(2.0, 0.05 * 2 ** min(entry.defers, 6)))
                return
            if turn == "skip":
                self._ack_only(entry)
            else:
                self.commit(entry, await self.process(entry))
            self.done(entry)
        except RasaWaiting:
            entry.attempts += 1
            self.put_back(entry, self.backoff(entry.attempts))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
            entry.attempts += 1
            log.warning("%s waits: Redis %s", entry.label, type(error).__name__)
            self.put_back(entry, self.backoff(entry.attempts))
        except Exception as error:
            if self._failed(entry, error):
                self.done(entry)
            else:
                self.put_back(entry, self.backoff(entry.attempts))

    # ---------------------------------------------------------------- ordering

    def _turn(self, entry: Entry) -> str:
        """'now' when this entry is next in its conversation, 'later' when an earlier one
        is not done yet, 'skip' when it was already answered (a reclaimed duplicate)."""
        cid = entry.fields.get("conversation_id", "")
        key = keys.order(cid)
        while True:
            head = self.db.lindex(key, 0)
            if head == entry.id:
                if self.db.xrange(INBOUND_STREAM, entry.id, entry.id):
                    return "now"
                self.db.lrem(key, 1, entry.id)  # erased meanwhile: nothing left to answer
                return "skip"
            if head is None or self.db.lpos(key, entry.id) is None:
                return "skip"
            if not self.db.xrange(INBOUND_STREAM, head, head):
                # The head was erased or dead-lettered without being popped; skip over it.
                self.db.lrem(key, 1, head)
                continue
            return "later"

    # ---------------------------------------------------------------- one message

    async def process(self, entry: Entry) -> Outcome:
        message = InboundEntry.from_fields(entry.fields)
        cid = message.conversation_id
        db = self.db
        state = conversations.state(db, cid)
        previous = state.get("language")
        opted_out = state.get("opted_out") == "1"
        outcome = Outcome(remember=(message.channel, message.sealed_address))
        text = message.body
        reserved = self.keywords.match(text)
        case_id = self.referrals.open_case_id(cid)

        if not text.strip():
            # One worker answers a conversation at a time (its order list), so reading first is safe.
            if not opted_out and not db.exists(keys.media_note(cid)):
                outcome.set_keys[keys.media_note(cid)] = ("1", MEDIA_NOTE_TTL)
                outcome.say(self.keywords.note("media_only", previous))
            log.info("%s has no text (%d media)", entry.label, message.media_count)
            return outcome

        if case_id:
            # The counsellor sees everything the person writes, reserved words included.
            case_id = self._relay(case_id, text)

        if reserved and reserved.kind == "stop":
            if not opted_out:
                outcome.say(self.keywords.note("opted_out", reserved.language(previous)))
                outcome.set_fields["opted_out"] = "1"
            log.info("conversation %s opted out", cid)
            return outcome
        if opted_out:
            if reserved and reserved.kind == "start":
                outcome.del_fields.append("opted_out")
                outcome.say(self.keywords.note("opted_in", reserved.language(previous)))
                log.info("conversation %s opted in again", cid)
            else:
                log.info("conversation %s is opted out; message not answered", cid)
            return outcome

        asked_in = db.get(keys.delete_pending(cid))  # the language the DELETE question was in
        if asked_in:
            outcome.del_keys.append(keys.delete_pending(cid))
            if self.keywords.confirms(text):
                return await self._erase(cid, asked_in, outcome)
            outcome.say(self.keywords.note("delete_cancelled", asked_in))

        if reserved:
            return self._reserved(reserved, cid, previous, outcome)

        language = choose_language(text, previous)
        if language != previous:
            outcome.set_fields["language"] = language
        if message.truncated:
            outcome.say(self.keywords.note("truncated", language))
        if case_id:
            return outcome
        for reply in await self._ask_rasa(cid, text, language, message.channel, outcome):
            outcome.say(reply, "bot")
        return outcome

    def _relay(self, case_id: str, text: str) -> str | None:
        try:
            self.referrals.append_message(case_id, author="person", text=text, actor="person")
        except CaseClosed:
            return None  # closed a moment ago: the bot answers again
        return case_id

    def _reserved(
        self, reserved: kw.Reserved, cid: str, previous: str | None, outcome: Outcome
    ) -> Outcome:
        language = reserved.language(previous)
        if reserved.kind == "start":
            outcome.say(self.keywords.note("opted_in", language))
        elif reserved.kind == "help":
            outcome.say(self.keywords.note("help", language))
        elif reserved.kind == "language":
            outcome.set_fields["language"] = language
            outcome.say(self.keywords.note("language_set", language))
        elif reserved.kind == "delete":
            outcome.set_keys[keys.delete_pending(cid)] = (language, DELETE_PENDING_TTL)
            if keys.delete_pending(cid) in outcome.del_keys:
                outcome.del_keys.remove(keys.delete_pending(cid))
            outcome.say(self.keywords.note("delete_confirm", language))
        log.info("conversation %s: reserved word (%s)", cid, reserved.kind)
        return outcome

    async def _erase(self, cid: str, language: str, outcome: Outcome) -> Outcome:
        await self.eraser(self.db, self.rasa, cid)
        log.info("conversation %s erased at the person's request", cid)
        # The erasure removed the conversation's state; only the sealed address stays a few
        # minutes so this confirmation can still be delivered. Remembering the person again
        # would keep that address for good.
        outcome.remember = None
        outcome.say(self.keywords.note("delete_done", language))
        return outcome

    async def _ask_rasa(
        self, cid: str, text: str, language: str, channel: str, outcome: Outcome
    ) -> list[str]:
        call = asyncio.ensure_future(
            self.rasa.send(cid, text, {"language": language, "channel": channel})
        )
        try:
            done, _ = await asyncio.wait({call}, timeout=self.slow_after)
            if not done:
                self._note_waiting(cid, language, outcome)
            messages = await call
        except RasaUnavailable as error:
            self._note_waiting(cid, language, outcome)
            log.warning("Rasa unavailable (%s); conversation %s waits", error, cid)
            raise RasaWaiting from error
        finally:
            if not call.done():
                call.cancel()
        return [m["text"] for m in messages if m.get("text")]

    def _note_waiting(self, cid: str, language: str, outcome: Outcome) -> None:
        """At most one "we received your message" per conversation while Rasa is away.

        Written at once, while the message itself stays pending; with how to reach the
        person, so the note reaches someone writing for the first time.
        """
        key = keys.waiting_note(cid)
        note = Outcome(remember=outcome.remember)
        # Set again when it exists: the outage goes on, so its one note still counts.
        note.set_keys[key] = ("1", WAITING_NOTE_TTL)
        if not self.db.exists(key):
            note.say(self.keywords.note("received_will_answer", language))
        with self.db.pipeline(transaction=True) as pipe:
            note.apply(pipe, cid)
            pipe.execute()

    # ---------------------------------------------------------------- finishing

    def commit(self, entry: Entry, outcome: Outcome) -> bool:
        """Queue the replies, apply the state changes and acknowledge, all or nothing; False
        when another worker answered this entry first (its replies are the ones sent)."""
        cid = entry.fields["conversation_id"]
        key = keys.order(cid)
        with self.db.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if pipe.lindex(key, 0) != entry.id:
                        pipe.unwatch()
                        self._ack_only(entry)
                        log.info(
                            "%s was answered by another worker; dropping this answer", entry.label
                        )
                        return False
                    pipe.multi()
                    outcome.apply(pipe, cid)
                    pipe.lpop(key)
                    self._ack(pipe, entry)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        latency = time.time() - float(entry.fields.get("received_at") or time.time())
        log.info(
            "%s answered with %d message(s) after %.0f ms",
            entry.label,
            len(outcome.replies),
            latency * 1000,
        )
        return True

    def _ack(self, pipe: redis.client.Pipeline, entry: Entry) -> None:
        pipe.xack(INBOUND_STREAM, GROUP, entry.id)
        # The text is not kept once handled: Rasa's tracker and the case hold the conversation.
        pipe.xdel(INBOUND_STREAM, entry.id)
        pipe.hdel(FAILURES, entry.id)

    def _ack_only(self, entry: Entry) -> None:
        with self.db.pipeline(transaction=True) as pipe:
            self._ack(pipe, entry)
            pipe.execute()

    def _failed(self, entry: Entry, error: Exception) -> bool:
        """Count a failure; after MAX_FAILURES the entry goes to the dead letters. True when it did."""
        entry.attempts += 1
        failures = self.db.hincrby(FAILURES, entry.id, 1)
        log.error(
            "%s failed (%s, %d of %d)", entry.label, where(error), failures, self.max_failures
        )
        if failures < self.max_failures:
            return False
        cid = entry.fields.get("conversation_id", "")
        with self.db.pipeline(transaction=True) as pipe:
            pipe.xadd(
                DEAD_LETTER_STREAM,
                {
                    **entry.fields,
                    "origin": INBOUND_STREAM,
                    "original_id": entry.id,
                    "error": type(error).__name__,
                    "failed_at": f"{time.time():.3f}",
                    "failures": str(failures),
                },
            )
            pipe.lrem(keys.order(cid), 1, entry.id)
            self._ack(pipe, entry)
            pipe.execute()
        log.error("%s moved to the dead letters (`hotline dlq list`)", entry.label)
        return True


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    worker = Worker(
        settings,
        # Shards are cheap coroutines; many of them keep conversations from queueing behind
        # one another in front of Rasa.
        concurrency=int(os.environ.get("HOTLINE_WORKER_CONCURRENCY", "64")),
        claim_idle=float(os.environ.get("HOTLINE_CLAIM_IDLE", "30")),
    )
    run_forever(worker)


if __name__ == "__main__":
    main()
