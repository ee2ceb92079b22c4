"""Server-sent events: open consoles follow the queue's change stream (keys.CHANGES_STREAM).

Each event says which case changed, how, and its priority; never a text or a number. The
page then fetches what it needs. A connection ends after a few minutes and the browser
reconnects with Last-Event-ID, so nothing is missed and no proxy holds a connection forever.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse
from redis import asyncio as aioredis

from hotline.keys import CHANGES_STREAM as CHANGES
from hotline.store import connect_async
from referral.console.deps import CounsellorDep, SettingsDep

router = APIRouter(include_in_schema=False)

_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True)
class Timing:
    # Below the Redis client's socket timeout, so a quiet queue is not a broken connection.
    block_ms: int = 5_000
    lifetime_seconds: float = 300.0
    retry_ms: int = 2_000


def timing_dep() -> Timing:
    return Timing()


TimingDep = Annotated[Timing, Depends(timing_dep)]


def stream_position(db: redis.Redis) -> str:
    """The id of the latest change: a page rendered now follows the stream from there."""
    latest = db.xrevrange(CHANGES, count=1)
    return latest[0][0] if latest else "0-0"


def _start(last_event_id: str | None, since: str | None) -> str | None:
    for candidate in (last_event_id, since):
        if candidate and _STREAM_ID.match(candidate):
            return candidate
    return None


def _event(entry_id: str, fields: dict[str, str]) -> str:
    data = {
        "case": fields.get("case", ""),
        "action": fields.get("action", ""),
        "priority": fields.get("priority", ""),
    }
    return f"id: {entry_id}\nevent: case\ndata: {json.dumps(data)}\n\n"


async def follow(
    db: aioredis.Redis, start: str | None, case_id: str | None, timing: Timing
) -> AsyncIterator[str]:
    """The change stream as SSE text, from `start` (exclusive) or from now."""
    try:
        if start is None:
            latest = await db.xrevrange(CHANGES, count=1)
            start = latest[0][0] if latest else "0-0"
        yield f"retry: {timing.retry_ms}\n\n"
        deadline = time.monotonic() + timing.lifetime_seconds
        position = start
        while time.monotonic() < deadline:
            batches = await db.xread({CHANGES: position}, block=timing.block_ms, count=200)
            if not batches:
                yield ": still here\n\n"
                continue
            for _stream, entries in batches:
                for entry_id, fields in entries:
                    position = entry_id
                    if case_id is None or fields.get("case") == case_id:
                        yield _event(entry_id, fields)
    finally:
        await db.aclose()


@router.get("/events")
async def events(
    me: CounsellorDep,
    settings: SettingsDep,
    timing: TimingDep,
    case: str | None = None,
    since: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Every case change (or one case's, with ?case=R12), as they happen."""
    stream = follow(connect_async(settings), _start(last_event_id, since), case, timing)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
