"""A Redis stream consumer group, shared by the worker and the sender.

Entries are spread over a fixed number of shards by conversation id, so one conversation's
entries are handled one after another while different conversations run in parallel.
Entries a crashed consumer left pending are reclaimed: at once when that consumer was a
process on this host that no longer exists, otherwise after `claim_idle` seconds without
a heartbeat. A consumer keeps the entries it holds fresh with heartbeats, so a slow Rasa
never makes another process take over work in progress.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import traceback
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from hotline.settings import Settings
from hotline.store import connect, connect_async

log = logging.getLogger(__name__)


@dataclass
class Entry:
    id: str
    fields: dict[str, str]
    attempts: int = 0  # failed tries in this process
    defers: int = 0  # times put back because an earlier entry of its conversation was not done
    # Taken over from another consumer (crashed, stopped or silent), which may have been
    # half-way through it: whatever it did before dying may have happened.
    redelivered: bool = False

    @property
    def label(self) -> str:
        """How logs name the entry: its MessageSid when it has one. (A stream id looks like a
        phone number to the log redaction, which would hide it.)"""
        return self.fields.get("message_sid") or "an entry without a MessageSid"


def where(error: BaseException) -> str:
    """Where an exception was raised, for a log line: the message itself may quote a text
    or a URL with a token, so it is never logged."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StreamConsumer:
    """Subclasses set `stream` and `group` and implement `handle`."""

    stream: str
    group: str
    batch_size = 1  # entries of one shard handed to `handle` at once

    def __init__(
        self,
        settings: Settings,
        *,
        db: redis.Redis | None = None,
        concurrency: int = 16,
        claim_idle: float = 30.0,
        block_ms: int = 1000,
        read_count: int = 64,
        consumer: str | None = None,
    ) -> None:
        self.settings = settings
        self.db = db or connect(settings)
        self.adb: redis.asyncio.Redis | None = None  # made in run(): it belongs to that event loop
        self.concurrency = concurrency
        self.claim_idle = claim_idle
        self.block_ms = block_ms
        self.read_count = read_count
        self.host = socket.gethostname()
        self.consumer = consumer or f"{self.host}-{os.getpid()}"
        self.max_held = max(4 * concurrency, read_count)
        self._held: set[str] = set()
        self._queues: list[asyncio.Queue[Entry | None]] = []
        self._stopping = asyncio.Event()
        self._quiet = False  # the last read found nothing new

    # ------------------------------------------------------------------ for subclasses

    async def handle(self, entries: list[Entry]) -> None:
        """Handle a shard's entries in order; call `done` for each one finished."""
        raise NotImplementedError

    def shard_key(self, entry: Entry) -> str:
        return entry.fields.get("conversation_id", "")

    def done(self, entry: Entry) -> None:
        self._held.discard(entry.id)

    def side_tasks(self) -> list[Coroutine[Any, Any, None]]:
        """Loops a subclass runs beside reading and reclaiming, until the consumer stops."""
        return []

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def pause(self, seconds: float) -> bool:
        """Sleep, waking early on shutdown; False when the consumer is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    def put_back(self, entry: Entry, delay: float) -> None:
        """Try an entry again later without blocking its shard."""
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._queues[self._shard(entry)].put_nowait, entry)

    @staticmethod
    def backoff(attempt: int, first: float = 0.5, cap: float = 5.0) -> float:
        return min(cap, first * 2 ** max(0, attempt - 1))

    # ------------------------------------------------------------------ machinery

    def _shard(self, entry: Entry) -> int:
        return zlib.crc32(self.shard_key(entry).encode()) % self.concurrency

    def _dispatch(
        self, entry_id: str, fields: dict[str, str] | None, *, redelivered: bool = False
    ) -> None:
        if fields is None or entry_id in self._held:
            return
        self._held.add(entry_id)
        entry = Entry(entry_id, fields, redelivered=redelivered)
        self._queues[self._shard(entry)].put_nowait(entry)

    def _adb(self) -> redis.asyncio.Redis:
        """The asyncio client, made in run() because it belongs to that event loop."""
        assert self.adb is not None, "run() makes the client before anything reads the stream"
        return self.adb

    async def ensure_group(self) -> None:
        try:
            await self._adb().xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def _read(self) -> None:
        while not self.stopping:
            if len(self._held) >= self.max_held:
                await self.pause(0.02)
                continue
            try:
                replies = await self._adb().xreadgroup(
                    self.group,
                    self.consumer,
                    {self.stream: ">"},
                    count=self.read_count,
                    block=self.block_ms,
                )
            except redis.ResponseError as error:
                if "NOGROUP" in str(error):  # Redis came back without the group (no AOF)
                    await self.ensure_group()
                    continue
                raise
            except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
                log.warning(
                    "%s: Redis unreachable (%s); retrying", self.group, type(error).__name__
                )
                await self.pause(1.0)
                continue
            entries = [item for _, items in replies or [] for item in items]
            self._quiet = not entries
            for entry_id, fields in entries:
                self._dispatch(entry_id, fields)

    async def _reclaim_once(self) -> int:
        claimed = 0
        # A process of ours that is gone: take its entries now rather than after claim_idle.
        for info in await self._adb().xinfo_consumers(self.stream, self.group):
            name = info["name"]
            host, _, pid = name.rpartition("-")
            if (
                name == self.consumer
                or host != self.host
                or not pid.isdigit()
                or process_alive(int(pid))
            ):
                continue
            if info.get("pending"):
                pending = await self._adb().xpending_range(
                    self.stream, self.group, "-", "+", info["pending"], consumername=name
                )
                ids = [item["message_id"] for item in pending]
                for start in range(0, len(ids), 100):
                    for entry_id, fields in await self._adb().xclaim(
                        self.stream, self.group, self.consumer, 0, ids[start : start + 100]
                    ):
                        self._dispatch(entry_id, fields, redelivered=True)
                        claimed += 1
            await self._adb().xgroup_delconsumer(self.stream, self.group, name)
        # Anyone else's entries that nobody has touched for claim_idle seconds.
        cursor = "0-0"
        while True:
            result = await self._adb().xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                int(self.claim_idle * 1000),
                cursor,
                count=100,
            )
            cursor, entries = result[0], result[1]
            for entry_id, fields in entries:
                if entry_id not in self._held:
                    self._dispatch(entry_id, fields, redelivered=True)
                    claimed += 1
            if cursor in ("0-0", b"0-0"):
                break
        if claimed:
            log.info("%s: reclaimed %d pending entries", self.group, claimed)
        return claimed

    async def _reclaim(self) -> None:
        while not self.stopping:
            try:
                await self._reclaim_once()
            except (redis.RedisError, OSError) as error:
                log.warning("%s: reclaim skipped (%s)", self.group, type(error).__name__)
            await self.pause(max(0.2, self.claim_idle / 2))

    async def _heartbeat(self) -> None:
        while not self.stopping:
            await self.pause(max(0.1, self.claim_idle / 3))
            ids = list(self._held)
            try:
                for start in range(0, len(ids), 200):
                    await self._adb().xclaim(
                        self.stream,
                        self.group,
                        self.consumer,
                        0,
                        ids[start : start + 200],
                        justid=True,
                    )
            except (redis.RedisError, OSError) as error:
                log.warning("%s: heartbeat skipped (%s)", self.group, type(error).__name__)

    async def _shard_loop(self, queue: asyncio.Queue[Entry | None]) -> None:
        while not self.stopping:
            entry = await queue.get()
            if entry is None:
                return
            batch = [entry]
            while len(batch) < self.batch_size and not queue.empty():
                following = queue.get_nowait()
                if following is None:
                    queue.put_nowait(None)
                    break
                batch.append(following)
            try:
                await self.handle(batch)
            except Exception as error:
                # handle() is meant to deal with its own failures; this keeps the shard alive.
                log.error(
                    "%s: unexpected %s; entries stay pending for a retry", self.group, where(error)
                )
                for item in batch:
                    self.put_back(item, self.backoff(item.attempts + 1))

    async def run(self) -> None:
        """Consume until `stop()`; the message in hand is finished, the rest stays pending."""
        self._stopping = asyncio.Event()
        self._queues = [asyncio.Queue() for _ in range(self.concurrency)]
        self._held.clear()
        self._quiet = False
        self.adb = connect_async(self.settings)
        try:
            await self._run()
        finally:
            await self._adb().aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.ensure_group()
                break
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                log.warning("%s: waiting for Redis", self.group)
                if not await self.pause(1.0):
                    return
        shards = [asyncio.create_task(self._shard_loop(q)) for q in self._queues]
        helpers = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._reclaim()),
            asyncio.create_task(self._heartbeat()),
            *(asyncio.create_task(task) for task in self.side_tasks()),
        ]
        log.info(
            "%s: consumer %s started with %d shards", self.group, self.consumer, self.concurrency
        )
        await self._stopping.wait()
        for queue in self._queues:
            queue.put_nowait(None)
        await asyncio.gather(*helpers, *shards, return_exceptions=True)
        log.info("%s: consumer %s stopped", self.group, self.consumer)

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self.db.close()

    @property
    def idle(self) -> bool:
        return self._quiet and not self._held

    async def _group_done(self) -> bool:
        """Nothing left in the group: not delivered yet, nor pending with any consumer."""
        if self.adb is None:
            return False
        try:
            groups = await self._adb().xinfo_groups(self.stream)
        except redis.RedisError:
            return False
        group = next((g for g in groups if g["name"] == self.group), None)
        return group is not None and group["pending"] == 0 and not group.get("lag")

    async def run_until_idle(self, timeout: float = 30.0, settle: float = 0.05) -> None:
        """Run until every entry in the stream is handled (for tests and tools)."""
        task = asyncio.create_task(self.run())
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(settle)
                if self.idle and await self._group_done():
                    await asyncio.sleep(settle)
                    if self.idle and await self._group_done():
                        break
                if task.done():
                    break
            else:
                raise TimeoutError(f"{self.group}: still busy after {timeout}s")
        finally:
            self.stop()
            await task


def run_forever(consumer: StreamConsumer) -> None:
    """The process entry: run until SIGTERM or SIGINT, finishing the message in hand."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, consumer.stop)
        try:
            await consumer.run()
        finally:
            consumer.close()

    asyncio.run(main())


@dataclass(frozen=True)
class Backlog:
    """What waits in a stream for its consumer group, as an operator reads it."""

    waiting: int  # entries not yet finished (read or not)
    in_hand: int  # of those, read by a consumer and not finished
    unread: int | None  # not read by any consumer yet (None: Redis cannot say, after a trim)
    oldest_age: float  # seconds the oldest waiting entry has waited; 0 when none waits

    @classmethod
    def of(
        cls,
        length: int,
        oldest: list[tuple[str, dict[str, str]]],
        groups: list[dict[str, Any]],
        group: str,
        now: float,
    ) -> Backlog:
        """From XLEN, XRANGE - + COUNT 1 and XINFO GROUPS of a stream whose consumers delete
        what they finish (the inbound stream): its length is what waits."""
        info = next((g for g in groups if g.get("name") == group), None)
        age = 0.0
        if oldest:
            entry_id, fields = oldest[0]
            # The gateway's receipt time; else the time Redis put in the entry id.
            since = float(fields.get("received_at") or int(entry_id.split("-")[0]) / 1000)
            age = max(0.0, now - since)
        return cls(
            waiting=length,
            in_hand=int(info["pending"]) if info else 0,
            unread=(info.get("lag") if info else length),
            oldest_age=age,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "in_hand": self.in_hand,
            "unread": self.unread,
            "oldest_wait_seconds": round(self.oldest_age, 1),
        }


def backlog(db: redis.Redis, stream: str, group: str) -> Backlog:
    with db.pipeline(transaction=False) as pipe:
        pipe.xlen(stream)
        pipe.xrange(stream, count=1)
        length, oldest = pipe.execute()
    try:
        groups = db.xinfo_groups(stream)
    except redis.ResponseError:  # no stream yet
        groups = []
    return Backlog.of(length, oldest, groups, group, time.time())


async def backlog_async(db: redis.asyncio.Redis, stream: str, group: str) -> Backlog:
    length = await db.xlen(stream)
    oldest = await db.xrange(stream, count=1)
    try:
        groups = await db.xinfo_groups(stream)
    except redis.ResponseError:
        groups = []
    return Backlog.of(length, oldest, groups, group, time.time())
