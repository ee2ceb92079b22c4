"""The sender: takes replies off the outbound stream and sends them with Twilio's REST API.

A conversation's consecutive messages are joined into as few SMS as possible (hotline.sms).
Network errors, 429 and 5xx are retried with backoff for as long as it takes; 21610 (the
person opted out at Twilio) marks the conversation opted out; invalid numbers are recorded
and not retried. In dev mode the same `twilio` client talks to the sandbox instead.

Every outcome is a delivery record (channels.delivery), and an entry that is a line of a
case's transcript (it has `case_id` and `ref`) gets its records linked to that line, whatever
happened: sent (one record per body, a long message has several), refused by Twilio, not sent
(opted out, no address) or dead-lettered. The console reads the line's status from there.
Run it with `python -m channels.sender`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import redis
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels import delivery
from channels.consumer import Entry, StreamConsumer, run_forever
from hotline import conversations, keys, sms
from hotline.ids import unseal
from hotline.keys import DEAD_LETTER_STREAM, OUTBOUND_STREAM
from hotline.logs import setup_logging
from hotline.settings import Settings, get_settings

log = logging.getLogger("channels.sender")  # also when run as __main__

GROUP = "senders"
OPTED_OUT = 21610  # "Attempt to send to unsubscribed recipient"
INVALID_NUMBER = {21211, 21214, 21612, 21614, 63024}  # not a number we can ever reach this way
PROGRESS_TTL = 24 * 3600

# The twilio library logs each request's URL and query at INFO; a list call's query can carry
# a number, so its logger only speaks up for problems.
_twilio_http_log = logging.getLogger("channels.sender.twilio_http")
_twilio_http_log.setLevel(logging.WARNING)


def twilio_client(settings: Settings) -> Client:
    """The real Twilio client; in dev mode its API base URL is the sandbox's."""
    http = TwilioHttpClient(timeout=20, logger=_twilio_http_log)
    client = Client(
        settings.twilio_sid, settings.twilio_auth_token.get_secret_value(), http_client=http
    )
    if settings.dev_mode:
        # Production differs from dev only by this base URL and the keys.
        client.api.base_url = settings.sandbox_url.rstrip("/")
    return client


class Stopping(Exception):
    """The process is shutting down in the middle of a retry; the entries stay pending."""


def _bodies_of(texts: list[str]) -> list[range]:
    """Which of `sms.join_messages(texts)`'s bodies carry each text, by replaying the join
    one text more at a time: a text starts in the body before it when it was joined onto
    that one, and reaches the last body there is once it is in."""
    carried: list[range] = []
    before: list[str] = []
    for count in range(1, len(texts) + 1):
        bodies = sms.join_messages(texts[:count])
        if not texts[count - 1].strip():
            carried.append(range(0))  # nothing to send: join_messages leaves it out
            continue
        joined = bool(before) and bodies[len(before) - 1] != before[-1]
        carried.append(range(len(before) - 1 if joined else len(before), len(bodies)))
        before = bodies
    return carried


def _lines(entries: list[Entry]) -> dict[str, list[str]]:
    """The case transcript lines these entries are: case id -> refs."""
    lines: dict[str, list[str]] = {}
    for entry in entries:
        case_id, ref = entry.fields.get("case_id"), entry.fields.get("ref")
        if case_id and ref:
            lines.setdefault(case_id, []).append(ref)
    return lines


def _runs(entries: list[Entry]) -> list[list[Entry]]:
    """Consecutive entries of the same conversation, which are sent joined."""
    runs: list[list[Entry]] = []
    for entry in entries:
        if runs and runs[-1][0].fields.get("conversation_id") == entry.fields.get(
            "conversation_id"
        ):
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


class Sender(StreamConsumer):
    stream = OUTBOUND_STREAM
    group = GROUP
    batch_size = 20

    def __init__(self, settings: Settings, *, client: Client | None = None, **options) -> None:
        super().__init__(settings, **options)
        self.twilio = client or twilio_client(settings)
        self.status_callback = settings.public_url.rstrip("/") + "/twilio/status"
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="twilio")

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        super().close()

    async def handle(self, entries: list[Entry]) -> None:
        runs = _runs(entries)
        for index, run in enumerate(runs):
            try:
                await self.deliver(run)
            except Stopping:
                for entry in (e for later in runs[index:] for e in later):
                    self.done(entry)
                return
            except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
                log.warning("sending waits: Redis %s", type(error).__name__)
                for entry in (e for later in runs[index:] for e in later):
                    entry.attempts += 1
                    self.put_back(entry, self.backoff(entry.attempts))
                return

    async def deliver(self, run: list[Entry]) -> None:
        """Send one conversation's consecutive messages, then acknowledge them together."""
        first = run[0]
        cid = first.fields.get("conversation_id", "")
        state = conversations.state(self.db, cid)
        channel = state.get("channel") or "sms"
        sendable: list[Entry] = []
        for entry in run:
            if state.get("opted_out") == "1" and entry.fields.get("source") != "system":
                # Only the opt-out confirmation itself (a system note) reaches an opted-out person.
                self._record_unsent(entry, cid, channel, "opted_out")
            elif not state.get("address"):
                self._record_unsent(entry, cid, channel, "no_address")
            else:
                sendable.append(entry)
        if sendable:
            await self._send(sendable, cid, channel, state["address"])
        self._ack(run)

    async def _send(self, run: list[Entry], cid: str, channel: str, sealed: str) -> None:
        try:
            address = unseal(sealed, self.settings.fernet_key.get_secret_value())
        except ValueError:
            self._dead_letter(run, "sealed address cannot be opened", cid, channel)
            return
        sender = (
            self.settings.twilio_whatsapp_from
            if channel == "whatsapp"
            else self.settings.twilio_sms_from
        )
        if channel == "whatsapp" and not sender.startswith("whatsapp:"):
            sender = f"whatsapp:{sender}"
        texts = [e.fields.get("text", "") for e in run]
        bodies = sms.join_messages(texts)
        carried = _bodies_of(texts)
        source = ",".join(sorted({e.fields.get("source", "bot") for e in run}))
        case_id = next((e.fields["case_id"] for e in run if e.fields.get("case_id")), None)
        # How many bodies of this run went out before a crash, so a retry does not repeat them.
        progress = keys.sending(run[0].id)
        already = int(self.db.get(progress) or 0)
        for index, body in enumerate(bodies):
            if index < already:
                continue
            record_id = f"{run[0].id}-{index}"
            try:
                message = await self._create(to=address, from_=sender, body=body)
            except TwilioRestException as error:
                # This body and the ones after it never go: every line they carry failed.
                unsent = [e for e, at in zip(run, carried, strict=True) if at.stop > index]
                self._refused(run, unsent, record_id, cid, channel, error)
                return
            with self.db.pipeline(transaction=True) as pipe:
                delivery.record(
                    pipe,
                    message.sid,
                    conversation_id=cid,
                    channel=channel,
                    source=source,
                    status=message.status or "queued",
                    segments=str(sms.segment_count(body)),
                    encoding=sms.encoding(body),
                    entry=record_id,
                    attempt=run[0].id,
                    case_id=case_id,
                )
                in_body = [e for e, at in zip(run, carried, strict=True) if index in at]
                delivery.link(pipe, message.sid, _lines(in_body))
                pipe.set(progress, index + 1, ex=PROGRESS_TTL)
                pipe.execute()
            log.info(
                "sent %s to %s (%d segment(s), %s)",
                message.sid,
                cid,
                sms.segment_count(body),
                channel,
            )

    async def _create(self, **fields: str):
        """messages.create, retried on network errors, 429 and 5xx until it goes through."""
        attempt = 0
        call = partial(self.twilio.messages.create, status_callback=self.status_callback, **fields)
        while True:
            try:
                return await asyncio.get_running_loop().run_in_executor(self._pool, call)
            except TwilioRestException as error:
                if error.status != 429 and error.status < 500:
                    raise
                reason = f"HTTP {error.status}"
            except (requests.RequestException, TwilioException) as error:
                reason = type(error).__name__
            attempt += 1
            delay = self.backoff(attempt, first=0.5, cap=30.0)
            log.warning(
                "Twilio did not take the message (%s); retry %d in %.1fs", reason, attempt, delay
            )
            if not await self.pause(delay):
                raise Stopping

    def _refused(
        self,
        run: list[Entry],
        unsent: list[Entry],
        record_id: str,
        cid: str,
        channel: str,
        error: TwilioRestException,
    ) -> None:
        code = error.code or error.status
        with self.db.pipeline(transaction=True) as pipe:
            delivery.record(
                pipe,
                f"rejected-{record_id}",
                conversation_id=cid,
                channel=channel,
                source=",".join(sorted({e.fields.get("source", "bot") for e in run})),
                status="rejected",
                error_code=str(code),
                entry=record_id,
                attempt=run[0].id,
                case_id=next((e.fields["case_id"] for e in run if e.fields.get("case_id")), None),
            )
            delivery.link(pipe, f"rejected-{record_id}", _lines(unsent))
            pipe.execute()
        if code == OPTED_OUT:
            self.db.hset(keys.conversation(cid), "opted_out", "1")
            log.info("conversation %s opted out at Twilio (21610); marked, not retried", cid)
        elif code in INVALID_NUMBER:
            log.warning(
                "conversation %s: Twilio says the number cannot receive (%s); not retried",
                cid,
                code,
            )
        else:
            # Already recorded as refused with its code: the dead letter is for an operator.
            self._dead_letter(run, f"Twilio {code}", cid, channel, record=False)

    def _record_unsent(
        self,
        entry: Entry,
        cid: str,
        channel: str,
        reason: str,
        pipe: redis.client.Pipeline | None = None,
    ) -> None:
        """A record that the entry was never sent, and why, linked to its transcript line."""
        writer = self.db.pipeline(transaction=True) if pipe is None else pipe
        record_id = f"unsent-{entry.id}"
        delivery.record(
            writer,
            record_id,
            conversation_id=cid,
            channel=channel,
            source=entry.fields.get("source", ""),
            status="not_sent",
            reason=reason,
            entry=entry.id,
            attempt=entry.id,
            case_id=entry.fields.get("case_id"),
        )
        delivery.link(writer, record_id, _lines([entry]))
        if pipe is None:
            writer.execute()
        log.info("a reply to %s was not sent: %s", cid, reason)

    def _dead_letter(
        self, run: list[Entry], error: str, cid: str, channel: str, *, record: bool = True
    ) -> None:
        with self.db.pipeline(transaction=True) as pipe:
            if record:
                for entry in run:
                    self._record_unsent(entry, cid, channel, "dead_letter", pipe)
            for entry in run:
                pipe.xadd(
                    DEAD_LETTER_STREAM,
                    {
                        **entry.fields,
                        "origin": OUTBOUND_STREAM,
                        "original_id": entry.id,
                        "error": error,
                    },
                )
            pipe.execute()
        log.error("%d reply(ies) moved to the dead letters: %s", len(run), error)

    def _ack(self, run: list[Entry]) -> None:
        with self.db.pipeline(transaction=True) as pipe:
            ids = [entry.id for entry in run]
            pipe.xack(OUTBOUND_STREAM, GROUP, *ids)
            # Sent texts are not kept: the record says what happened, not what was said.
            pipe.xdel(OUTBOUND_STREAM, *ids)
            pipe.delete(*(keys.sending(entry_id) for entry_id in ids))
            pipe.execute()
        for entry in run:
            self.done(entry)


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    sender = Sender(
        settings,
        concurrency=int(os.environ.get("HOTLINE_SENDER_CONCURRENCY", "16")),
        claim_idle=float(os.environ.get("HOTLINE_CLAIM_IDLE", "30")),
    )
    run_forever(sender)


if __name__ == "__main__":
    main()
