"""The dead letters: messages that kept failing, for an operator to list and replay.

`hotline dlq list` shows what failed and why, without the text or the number;
`hotline dlq replay [ID]` puts entries back on the stream they came from.
"""

from __future__ import annotations

import logging

import redis

from channels import inbound
from hotline.keys import DEAD_LETTER_STREAM, INBOUND_STREAM, OUTBOUND_STREAM

log = logging.getLogger(__name__)

# Added when an entry is dead-lettered; dropped again when it is replayed.
_META = ("origin", "original_id", "error", "failed_at", "failures")
# What an operator's terminal may show: never the text, never the (sealed) address.
_SHOWN = (
    "origin",
    "original_id",
    "error",
    "failed_at",
    "failures",
    "conversation_id",
    "channel",
    "source",
)


def list_dead(db: redis.Redis) -> list[dict]:
    """Every dead-lettered entry, oldest first: its id, where it came from and why it failed."""
    return [
        {"id": entry_id, **{k: fields[k] for k in _SHOWN if k in fields}}
        for entry_id, fields in db.xrange(DEAD_LETTER_STREAM)
    ]


def replay(db: redis.Redis, entry_id: str | None = None) -> int:
    """Put one dead letter (or all) back on its stream; returns how many were replayed."""
    entries = (
        db.xrange(DEAD_LETTER_STREAM, entry_id, entry_id)
        if entry_id
        else db.xrange(DEAD_LETTER_STREAM)
    )
    replayed = 0
    for dead_id, fields in entries:
        origin = fields.get("origin", INBOUND_STREAM)
        original = {k: v for k, v in fields.items() if k not in _META}
        if origin == OUTBOUND_STREAM:
            db.xadd(OUTBOUND_STREAM, original)
        else:
            inbound.append(db, original)
        db.xdel(DEAD_LETTER_STREAM, dead_id)
        replayed += 1
        log.info("dead letter %s replayed to %s", dead_id, origin)
    return replayed
