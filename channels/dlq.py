"""The dead letters: messages that kept failing, for an operator to list and replay.

`hotline dlq list` shows what failed and why, without the text or the number;
`hotline dlq replay [ID]` puts entries back on the stream they came from. The work is done by
referral.failures, which the supervisor's console page shares (`hotline undelivered` lists
the undelivered replies with them).
"""

from __future__ import annotations

from dataclasses import asdict

import redis

from referral import failures


def list_dead(db: redis.Redis) -> list[dict]:
    """Every dead-lettered entry, oldest first: its id, where it came from (inbound or
    outbound) and why it failed; never its text or its (sealed) address."""
    return [{k: v for k, v in asdict(dead).items() if v != ""} for dead in failures.list_dead(db)]


def replay(db: redis.Redis, entry_id: str | None = None) -> int:
    """Put one dead letter (or all) back on its stream; returns how many were replayed."""
    try:
        return failures.replay_dead(db, entry_id)
    except failures.NotFound:
        return 0
