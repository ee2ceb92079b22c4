"""Erasure at Twilio: delete every Message resource to or from an erased person's number.

Twilio keeps each message's body and both numbers until its Message resource is deleted, so
an erasure (referral.privacy) is not done while Twilio still holds the texts. The erasure
queues the conversation's sealed address on `keys.TWILIO_ERASURES_STREAM`; the sender, the
one process holding the Twilio token, works through that queue beside sending (a side task
of channels.sender.Sender).

For each due entry both channel identities of the number are asked for (`+258…` and
`whatsapp:+258…`, to and from), and each message found is deleted. Twilio refuses a message
it has not finished with (error 20009: wait a minute or more and try again), so an entry
whose messages are not all gone is asked again later, with backoff, for up to
GIVE_UP_AFTER; then an ERROR names the message sids (never the number) for an operator to
delete in Twilio's console. Deleting is idempotent (a message already gone is 20404), so a
sender that dies half-way only repeats requests. One sender at a time holds the lease.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import redis
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from hotline import keys
from hotline.ids import number_of, unseal

log = logging.getLogger("channels.twilio_erasure")

STREAM = keys.TWILIO_ERASURES_STREAM
LEASE = keys.TWILIO_ERASING_KEY
LEASE_SECONDS = 120
POLL_SECONDS = 15.0
RETRY_FIRST_SECONDS = 120.0
RETRY_CAP_SECONDS = 3600.0
# Twilio: "in rare cases, a message record may take up to 14 days to be finalized and able
# to be deleted" (error 20009).
GIVE_UP_AFTER = 15 * 24 * 3600.0
NOT_FINISHED = 20009  # "Cannot delete this resource before it is complete"
NOT_FOUND = 20404
PAGE = 1000

Runner = Callable[[Callable[[], object]], Awaitable[object]]


@dataclass
class Outcome:
    deleted: int = 0
    waiting: list[str] = field(default_factory=list)  # sids Twilio is not finished with yet

    @property
    def done(self) -> bool:
        return not self.waiting


class TwilioUnavailable(Exception):
    """Twilio did not answer or answered 429/5xx: the whole entry is asked again later."""


def addresses_of(address: str) -> list[str]:
    """Both channel identities of the number an address reaches."""
    number = number_of(address)
    return [number, f"whatsapp:{number}"]


class TwilioErasure:
    def __init__(
        self,
        db: redis.Redis,
        twilio: Client,
        fernet_key: str,
        run: Runner,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.twilio, self.fernet_key, self.run = db, twilio, fernet_key, run
        self.clock = clock
        self.holder = uuid.uuid4().hex

    async def work(self, pause: Callable[[float], Awaitable[bool]]) -> None:
        """The side task: every POLL_SECONDS, the entries that are due. Stops when pause does."""
        while await pause(POLL_SECONDS):
            try:
                await self.run_due()
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("Twilio erasures wait: Redis %s", type(error).__name__)

    async def run_due(self) -> int:
        """Work through the due entries; returns how many were finished."""
        if not self._lease():
            return 0
        finished = 0
        try:
            now = self.clock()
            for entry_id, fields in self.db.xrange(STREAM, "-", "+", count=100):
                if float(fields.get("due") or 0) > now:
                    continue
                if await self._entry(entry_id, fields, now):
                    finished += 1
                self.db.expire(LEASE, LEASE_SECONDS)
        finally:
            self._release()
        return finished

    async def _entry(self, entry_id: str, fields: dict[str, str], now: float) -> bool:
        name = f"entry {entry_id}"  # the entry names no conversation: it was erased
        try:
            address = unseal(fields.get("address", ""), self.fernet_key)
        except ValueError:
            log.error("the Twilio erasure of %s cannot open its sealed address; dropped", name)
            self.db.xdel(STREAM, entry_id)
            return False
        try:
            outcome = await self.forget(address)
        except TwilioUnavailable as error:
            outcome, why = None, str(error)
        if outcome is not None and outcome.done:
            self.db.xdel(STREAM, entry_id)
            log.info(
                "the Twilio erasure of %s is done: %d message(s) deleted", name, outcome.deleted
            )
            return True
        if outcome is not None:
            why = f"{outcome.deleted} deleted, {len(outcome.waiting)} not finished at Twilio"
        if now - float(fields.get("since") or now) >= GIVE_UP_AFTER:
            self.db.xdel(STREAM, entry_id)
            log.error(
                "the Twilio erasure of %s is given up after %d days (%s); delete its messages "
                "in Twilio's console: %s",
                name,
                GIVE_UP_AFTER // 86400,
                why,
                " ".join(outcome.waiting) if outcome else "list them by the number",
            )
            return False
        log.warning("the Twilio erasure of %s is asked again later: %s", name, why)
        self._ask_again(entry_id, fields, now)
        return False

    async def forget(self, address: str) -> Outcome:
        """Delete every message Twilio lists to or from either identity of this number."""
        sids: dict[str, None] = {}
        for identity in addresses_of(address):
            for direction in ("to", "from_"):
                listing = await self._twilio(
                    partial(self.twilio.messages.list, **{direction: identity}, page_size=PAGE)
                )
                sids.update((message.sid, None) for message in listing)
        outcome = Outcome()
        for sid in sids:
            try:
                await self._twilio(self.twilio.messages(sid).delete)
                outcome.deleted += 1
            except TwilioRestException as error:
                if error.code == NOT_FOUND:
                    continue  # gone already (an earlier try, or another sender)
                if error.code == NOT_FINISHED:
                    outcome.waiting.append(sid)
                    continue
                raise
        return outcome

    async def _twilio(self, call: Callable[[], object]):
        try:
            return await self.run(call)
        except TwilioRestException as error:
            if error.status == 429 or error.status >= 500:
                raise TwilioUnavailable(f"HTTP {error.status}") from error
            if error.code in (NOT_FOUND, NOT_FINISHED):
                raise
            raise TwilioUnavailable(f"Twilio refused: {error.code}") from error
        except (requests.RequestException, TwilioException) as error:
            raise TwilioUnavailable(type(error).__name__) from error

    def _ask_again(self, entry_id: str, fields: dict[str, str], now: float) -> None:
        asked = int(fields.get("asked") or 0) + 1
        delay = min(RETRY_CAP_SECONDS, RETRY_FIRST_SECONDS * 2 ** (asked - 1))
        with self.db.pipeline(transaction=True) as pipe:
            pipe.xadd(STREAM, {**fields, "asked": str(asked), "due": f"{now + delay:.3f}"})
            pipe.xdel(STREAM, entry_id)
            pipe.execute()

    def _lease(self) -> bool:
        """Take (or keep) the lease; another sender holding it makes this pass a no-op."""
        return bool(self.db.set(LEASE, self.holder, nx=True, ex=LEASE_SECONDS)) or (
            self.db.get(LEASE) == self.holder
        )

    def _release(self) -> None:
        self.db.register_script(_RELEASE)(keys=[LEASE], args=[self.holder])


# Delete the lease only if this sender still holds it (it may have expired and been taken).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
