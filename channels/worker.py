"""The worker: the transport between the inbound stream and the conversation router.

It takes people's messages off the inbound stream, in conversation order, asks the router
(channels/router.py) what to do with each, and commits the router's `Outcome` in the same Redis
transaction that acknowledges the message, so a message is answered once and a failure
half-way writes nothing. Its own jobs are only transport: ordering (one message of a
conversation at a time, the others put back without holding up their shard), retries while Rasa
or Redis is away, and dead letters for a message that keeps failing (Rasa taking a message and
never answering it counts; Rasa being down does not, it only waits). Beside that, it watches
the stream for a backlog: a person whose message has waited `note_after` seconds is told, once,
that it arrived (`_watch_backlog`).
Run it with `python -m channels.worker`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import redis

from channels.consumer import Backlog, Entry, StreamConsumer, backlog, run_forever, where
from channels.inbound import InboundEntry
from channels.router import BACKLOG_NOTE_AFTER, Eraser, Outcome, RasaTimedOut, RasaWaiting, Router
from hotline import keys, metrics
from hotline.keys import DEAD_LETTER_STREAM, INBOUND_STREAM
from hotline.logs import setup_logging
from hotline.rasa import RasaClient
from hotline.settings import Settings, get_settings

log = logging.getLogger("channels.worker")  # also when run as __main__

GROUP = "workers"
MAX_FAILURES = 5  # a message failing this often (not counting Rasa being down) is dead-lettered
FAILURES = keys.INBOUND_FAILURES_KEY
BACKLOG_SCAN_EVERY = 1.0  # seconds between two looks at the stream for messages waiting long
# Set on a dead letter (and kept when it is replayed): it may have reached Rasa before.
TRIED = "tried"
# Tests only (HOTLINE_ENV=test): the process exits hard once Rasa has answered a message and
# before that answer is committed, the one moment a crash could make Rasa hear a turn twice.
CRASH_AFTER_RASA = "HOTLINE_TEST_CRASH_AFTER_RASA"


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
        note_after: float = BACKLOG_NOTE_AFTER,
        max_failures: int = MAX_FAILURES,
        **options,
    ) -> None:
        super().__init__(settings, **options)
        self.max_failures = max_failures
        self.note_after = note_after
        self.rasa = rasa or RasaClient(settings)
        self.router = Router(
            self.db,
            self.rasa,
            settings.data_dir / "keywords.yml",
            eraser or _default_eraser(settings),
            slow_after=slow_after,
            note_after=note_after,
            check_saved=settings.redis_ack_replicas > 0,
        )
        self._crash_after_rasa = settings.env == "test" and os.environ.get(CRASH_AFTER_RASA) == "1"

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
                outcome = await self.process(entry)
                if self._crash_after_rasa and any(src == "bot" for _, src in outcome.replies):
                    log.warning("%s: exiting hard before the commit (test hook)", entry.label)
                    os._exit(70)
                self.commit(entry, outcome)
            self.done(entry)
        except RasaWaiting:
            metrics.INBOUND_NOT_ANSWERED.labels("rasa_down").inc()
            entry.attempts += 1
            self.put_back(entry, self.backoff(entry.attempts))
        except RasaTimedOut as error:
            metrics.INBOUND_NOT_ANSWERED.labels("rasa_timeout").inc()
            reason = f"Rasa took the message and gave {error}"
            if self._failed(entry, error, reason):
                self.done(entry)
            else:
                self.put_back(entry, self.backoff(entry.attempts))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
            entry.attempts += 1
            log.warning("%s waits: Redis %s", entry.label, type(error).__name__)
            self.put_back(entry, self.backoff(entry.attempts))
        except Exception as error:
            metrics.INBOUND_NOT_ANSWERED.labels("error").inc()
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
        # Tried before, here or by a consumer that died holding it, or a replayed dead letter:
        # Rasa may have this turn already, and must not get it twice.
        tried = entry.redelivered or entry.attempts > 0 or entry.fields.get(TRIED) == "1"
        return await self.router.route(
            InboundEntry.from_fields(entry.fields), entry.label, tried=tried
        )

    # ---------------------------------------------------------------- a backlog

    def side_tasks(self) -> list:
        return [self._watch_backlog()]

    async def _watch_backlog(self) -> None:
        """Every second, note the messages that have waited `note_after` seconds.

        The stream holds only messages not yet answered (an answer deletes its entry), in
        arrival order, so each look reads on from where the last one stopped and ends at the
        first message that has not waited long enough. Every worker looks; the note itself is
        once per conversation (Router.acknowledge_backlog).
        """
        after = "-"
        while await self.pause(BACKLOG_SCAN_EVERY):
            noted, more = 0, True
            try:
                while more and not self.stopping:
                    after, told, more = self._note_backlog(after)
                    noted += told
                    await asyncio.sleep(0)  # a long backlog is read in slices between messages
            except (redis.RedisError, OSError) as error:
                log.warning("backlog watch skipped (%s)", type(error).__name__)
            if noted:
                figures = self.backlog()
                log.warning(
                    "backlog: %d message(s) waiting, the oldest for %.0f s; %d more person(s) "
                    "told their message arrived",
                    figures.waiting,
                    figures.oldest_age,
                    noted,
                )

    def _note_backlog(self, after: str, count: int = 100) -> tuple[str, int, bool]:
        """Note the messages past `after` that waited long, up to `count` of them: the last
        entry id looked at, how many people were told, and whether more may be waiting."""
        now = time.time()
        noted = 0
        entries = self.db.xrange(
            INBOUND_STREAM, min=f"({after}" if after != "-" else "-", count=count
        )
        for entry_id, fields in entries:
            received = float(fields.get("received_at") or int(entry_id.split("-")[0]) / 1000)
            if now - received < self.note_after:
                return after, noted, False
            if fields.get("conversation_id") and self.router.acknowledge_backlog(
                InboundEntry.from_fields(fields)
            ):
                noted += 1
            after = entry_id
        return after, noted, len(entries) == count

    def backlog(self) -> Backlog:
        return backlog_now(self.db)

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
        metrics.INBOUND_HANDLED.labels(outcome.answered_by).inc()
        metrics.INBOUND_WAIT_SECONDS.labels(outcome.answered_by).observe(max(0.0, latency))
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

    def _failed(self, entry: Entry, error: Exception, reason: str = "") -> bool:
        """Count a failure; after MAX_FAILURES the entry goes to the dead letters, with the
        failure's kind and `reason` (never an exception's own text, which may quote a
        person's words). True when it went."""
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
                    "error": type(error).__name__ + (f": {reason}" if reason else ""),
                    "failed_at": f"{time.time():.3f}",
                    "failures": str(failures),
                    TRIED: "1",
                },
            )
            pipe.lrem(keys.order(cid), 1, entry.id)
            self._ack(pipe, entry)
            pipe.execute()
        log.error("%s moved to the dead letters (`hotline dlq list`)", entry.label)
        metrics.INBOUND_NOT_ANSWERED.labels("dead_letter").inc()
        return True


def backlog_now(db: redis.Redis) -> Backlog:
    """The people's messages waiting for an answer (`hotline backlog`, the gateway's /healthz)."""
    return backlog(db, INBOUND_STREAM, GROUP)


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    settings.require("worker")  # refuses to start without its secrets (and, in prod, its login)
    worker = Worker(
        settings,
        # Shards are cheap coroutines; many of them keep conversations from queueing behind
        # one another in front of Rasa.
        concurrency=int(os.environ.get("HOTLINE_WORKER_CONCURRENCY", "64")),
        claim_idle=float(os.environ.get("HOTLINE_CLAIM_IDLE", "30")),
        note_after=float(os.environ.get("HOTLINE_BACKLOG_NOTE_AFTER", str(BACKLOG_NOTE_AFTER))),
    )
    port = os.environ.get("HOTLINE_WORKER_METRICS_PORT")
    if port:
        # One port per worker process on a host (docs/operations.md lists the scrape targets).
        metrics.serve(int(port))
    run_forever(worker)


if __name__ == "__main__":
    main()
