"""The timer jobs `make run` supervises: finish hand-backs Rasa missed, purge old cases.

Both jobs are safe to run at any time and from any process: a resume is retried until Rasa
takes it, and purging anonymises only cases closed longer ago than the retention period.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis

from hotline.logs import setup_logging
from hotline.rasa import RasaClient
from hotline.settings import Settings, get_settings
from hotline.store import connect
from referral.handback import resume_pending
from referral.privacy import purge
from referral.queue import Referrals

log = logging.getLogger(__name__)

# A closed case whose resume failed leaves the person talking to a paused bot, so retry
# often; purging is about retention in days, so hourly is plenty.
RESUME_EVERY_SECONDS = 15
PURGE_EVERY_SECONDS = 3600


async def tick(settings: Settings, db: redis.Redis, rasa: RasaClient, last_purge: float) -> float:
    """One round of housekeeping; returns when the last purge ran."""
    resumed = await resume_pending(Referrals(db), rasa)
    if resumed:
        log.info("resumed the bot for %d closed case(s)", resumed)
    if time.time() - last_purge >= PURGE_EVERY_SECONDS:
        purge(
            db, settings.retention_days * 86400, fernet_key=settings.fernet_key.get_secret_value()
        )
        last_purge = time.time()
    return last_purge


async def run_forever(settings: Settings) -> None:
    db = connect(settings)
    rasa = RasaClient(settings)
    last_purge = 0.0
    try:
        while True:
            try:
                last_purge = await tick(settings, db, rasa, last_purge)
            except redis.RedisError as error:
                # Redis restarting: nothing is lost, the next round picks the work up.
                log.warning("housekeeping skipped a round: %s", type(error).__name__)
            await asyncio.sleep(RESUME_EVERY_SECONDS)
    finally:
        await rasa.aclose()


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    asyncio.run(run_forever(settings))


if __name__ == "__main__":
    main()
