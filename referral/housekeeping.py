"""The timer job `make run` supervises: purge what is past the retention period.

Safe to run at any time and from any process: purging reaches only what has been quiet longer
than the retention period (referral.privacy.purge). Hand-backs need no timer any more: closing
a case is the hand-back (referral/handback.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import redis

from hotline import metrics
from hotline.logs import setup_logging
from hotline.settings import Settings, get_settings
from hotline.store import connect
from referral.privacy import purge

log = logging.getLogger(__name__)

# Retention is counted in days, so hourly is plenty; the loop wakes more often so that a
# Redis restart costs a minute, not an hour.
PURGE_EVERY_SECONDS = 3600
WAKE_EVERY_SECONDS = 60


def tick(settings: Settings, db: redis.Redis, last_purge: float) -> float:
    """One round of housekeeping; returns when the last purge ran."""
    if time.time() - last_purge >= PURGE_EVERY_SECONDS:
        try:
            with metrics.PURGE_SECONDS.time():
                anonymised = purge(
                    db,
                    settings.retention_days * 86400,
                    fernet_key=settings.fernet_key.get_secret_value(),
                )
        except redis.RedisError:
            metrics.PURGE_ROUNDS.labels("redis_error").inc()
            raise
        metrics.PURGE_ROUNDS.labels("ok").inc()
        metrics.PURGE_CASES.inc(anonymised)
        last_purge = time.time()
        metrics.PURGE_LAST_OK.set(last_purge)
    return last_purge


async def run_forever(settings: Settings) -> None:
    db = connect(settings)
    last_purge = 0.0
    while True:
        try:
            last_purge = tick(settings, db, last_purge)
        except redis.RedisError as error:
            # Redis restarting: nothing is lost, the next round picks the work up.
            log.warning("housekeeping skipped a round: %s", type(error).__name__)
        await asyncio.sleep(WAKE_EVERY_SECONDS)


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    settings.require(
        "housekeeping"
    )  # refuses to start without its secrets (and, in prod, its login)
    port = os.environ.get("HOTLINE_HOUSEKEEPING_METRICS_PORT")
    if port:
        # No web server of its own, as the worker and the sender (docs/operations.md).
        metrics.serve(int(port))
    asyncio.run(run_forever(settings))


if __name__ == "__main__":
    main()
