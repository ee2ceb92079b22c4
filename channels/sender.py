"""The sender: takes replies off the outbound stream and sends them with Twilio's REST API.

A conversation's consecutive messages are joined into as few SMS as possible (hotline.sms).
Network errors, 429 and 5xx are retried with backoff for as long as it takes; 21610 (the
person opted out at Twilio) marks the conversation opted out; invalid numbers are recorded
and not retried. In dev mode the same `twilio` client talks to the sandbox instead.

No body is sent twice. Twilio's Messages.create takes no idempotency key, so before each body
the sender writes its intent (`keys.sending(run)`: "<bodies out> <when the next was handed
over>"). A body whose outcome is unknown (the sender died with the request out, or the
request timed out or got a 5xx) is first looked for in Twilio's Messages list: a message to
the same address, from the same number, with the same body, created since the intent, that no
delivery record of ours claims yet, is that body; it is recorded and not sent again.
A Twilio outage (429, 5xx, no answer) is one WARNING when it starts, one ERROR with the count
once it has lasted `outage_after` seconds, and one line when Twilio takes messages again.

Every outcome is a delivery record (channels.delivery), and an entry that is a line of a
case's transcript (it has `case_id` and `ref`) gets its records linked to that line, whatever
happened: sent (one record per body, a long message has several), refused by Twilio, not sent
(opted out, no address) or dead-lettered. The console reads the line's status from there.
Beside sending, it deletes erased conversations' messages at Twilio (channels.twilio_erasure).
Run it with `python -m channels.sender`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import redis
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels import delivery
from channels.consumer import Entry, StreamConsumer, run_forever
from channels.twilio_erasure import TwilioErasure
from hotline import conversations, keys, metrics, sms
from hotline.ids import unseal
from hotline.keys import DEAD_LETTER_STREAM, OUTBOUND_STREAM
from hotline.logs import setup_logging
from hotline.settings import Settings, get_settings
from hotline.store import execute_replicated

log = logging.getLogger("channels.sender")  # also when run as __main__

GROUP = "senders"
OPTED_OUT = 21610  # "Attempt to send to unsubscribed recipient"
INVALID_NUMBER = {21211, 21214, 21612, 21614, 63024}  # not a number we can ever reach this way
PROGRESS_TTL = 24 * 3600
# A request the dead sender had already written out may still be in Twilio's hands for a
# moment; the replacement looks for it in the Messages list only after this long.
SETTLE_SECONDS = 2.0
# Twilio's clock and ours differ, and date_created has whole seconds: a message created up
# to this long before our intent may still be ours. Bodies our records claim never match.
CLOCK_SKEW_SECONDS = 120.0
RECONCILE_PAGE = 20  # messages to the person, newest first, read before giving up

# The twilio library logs each request's URL and query at INFO; a list call's query can carry
# a number, so its logger only speaks up for problems.
_twilio_http_log = logging.getLogger("channels.sender.twilio_http")
_twilio_http_log.setLevel(logging.WARNING)
# urllib3 writes every request line at DEBUG, and the Messages list the sender reads after a
# crash has the person's number in its query string.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


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


def _progress(raw: str | None) -> tuple[int, float | None, str | None]:
    """A run's progress: how many bodies went out, when the next one was handed to Twilio
    (None when no request is out, so its outcome is known), and the id of the run's last
    entry when it first went out ("sent since last", since "-" when none is out)."""
    if not raw:
        return 0, None, None
    sent, since, last = [*raw.split(" "), "", ""][:3]
    return int(sent), float(since) if since not in ("", "-") else None, last or None


def _timed(outcome: str, started: float) -> None:
    metrics.TWILIO_SEND_SECONDS.labels(outcome).observe(time.perf_counter() - started)


def _progress_value(sent: int, handed_over: float | None, last: str) -> str:
    return f"{sent} {'-' if handed_over is None else f'{handed_over:.3f}'} {last}"


class Outage:
    """Twilio failing (429, 5xx, no answer) across every shard of this sender: one WARNING when
    it starts, one ERROR with the count once it lasts `report_after` seconds, one line when it
    ends. Each retry on its own is only a DEBUG line."""

    def __init__(self, report_after: float, clock=time.monotonic) -> None:
        self.report_after, self.clock = report_after, clock
        self.started: float | None = None
        self.failures: dict[str, int] = {}
        self.reported = False

    @property
    def count(self) -> int:
        return sum(self.failures.values())

    def _reasons(self) -> str:
        return ", ".join(f"{reason} x{n}" for reason, n in sorted(self.failures.items()))

    def failed(self, reason: str) -> None:
        now = self.clock()
        if self.started is None:
            self.started, self.failures, self.reported = now, {}, False
            log.warning("Twilio did not take a request (%s); retrying with backoff", reason)
        self.failures[reason] = self.failures.get(reason, 0) + 1
        if not self.reported and now - self.started >= self.report_after:
            self.reported = True
            log.error(
                "Twilio has failed %d requests over %.0fs (%s); replies wait and are retried",
                self.count,
                now - self.started,
                self._reasons(),
            )

    def ended(self) -> None:
        if self.started is None:
            return
        report = log.error if self.reported else log.info
        report(
            "Twilio takes requests again after %d failed over %.0fs (%s)",
            self.count,
            self.clock() - self.started,
            self._reasons(),
        )
        self.started = None


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

    def __init__(
        self,
        settings: Settings,
        *,
        client: Client | None = None,
        outage_after: float = 60.0,
        retry_first: float = 0.5,
        retry_cap: float = 30.0,
        settle: float = SETTLE_SECONDS,
        **options,
    ) -> None:
        super().__init__(settings, **options)
        self.twilio = client or twilio_client(settings)
        self.outage = Outage(outage_after)
        self.retry_first, self.retry_cap, self.settle = retry_first, retry_cap, settle
        self.status_callback = settings.public_url.rstrip("/") + "/twilio/status"
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="twilio")
        # Erased conversations' messages at Twilio: only this process holds the Twilio token.
        self.erasure = TwilioErasure(
            self.db, self.twilio, settings.fernet_key.get_secret_value(), self._call
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        super().close()

    def side_tasks(self) -> list:
        return [self.erasure.work(self.pause)]

    async def ensure_group(self) -> None:
        await super().ensure_group()
        # A crashed sender's replies are taken before anything new is read, so a person's
        # later reply never overtakes an earlier one the crash interrupted.
        await self._reclaim_once()

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
        while sendable:
            sendable = await self._send(sendable, cid, channel, state["address"])
        self._ack(run)

    async def _send(self, run: list[Entry], cid: str, channel: str, sealed: str) -> list[Entry]:
        """Send the run's bodies; returns the entries after the part of the run an earlier
        attempt had started (they go as a run of their own)."""
        # How far this run got before a crash, so a retry neither repeats nor loses a body.
        progress = keys.sending(run[0].id)
        already, handed_over, last = _progress(self.db.get(progress))
        rest: list[Entry] = []
        ids = [e.id for e in run]
        if last in ids:
            # A retry sends the run that first went out, no more: its bodies are joined from its
            # texts, and a replacement sender that took more entries with it after a crash
            # would join other bodies, which Twilio's list cannot match, so lines already
            # delivered would go again.
            cut = ids.index(last) + 1
            run, rest = run[:cut], run[cut:]
        last = run[-1].id
        try:
            address = unseal(sealed, self.settings.fernet_key.get_secret_value())
        except ValueError:
            self._dead_letter(run + rest, "sealed address cannot be opened", cid, channel)
            return []
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
        for index, body in enumerate(bodies):
            if index < already:
                continue
            record_id = f"{run[0].id}-{index}"
            fields = {"to": address, "from_": sender, "body": body}
            message = None
            if handed_over is not None:
                # The previous attempt died with this body's request out: did Twilio take it?
                message = await self._find_sent(handed_over, fields)
            try:
                if message is None:
                    handed_over = time.time()
                    # The intent is what keeps a body from going twice, so past one machine it
                    # is on a replica before Twilio hears the body (NotReplicated: it waits).
                    with self.db.pipeline(transaction=False) as pipe:
                        pipe.set(
                            progress, _progress_value(index, handed_over, last), ex=PROGRESS_TTL
                        )
                        execute_replicated(pipe, self.settings)
                    message = await self._create(handed_over, fields)
            except TwilioRestException as error:
                # This body and the ones after it never go: every line they carry failed.
                unsent = [e for e, at in zip(run, carried, strict=True) if at.stop > index]
                self._refused(run, unsent, record_id, cid, channel, error)
                return rest
            handed_over = None
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
                pipe.set(progress, _progress_value(index + 1, None, last), ex=PROGRESS_TTL)
                pipe.execute()
            metrics.OUTBOUND_SENT.labels("accepted").inc()
            log.info(
                "sent %s to %s (%d segment(s), %s)",
                message.sid,
                cid,
                sms.segment_count(body),
                channel,
            )
        return rest

    async def _call(self, call):
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def _retry(self, reason: str, attempt: int) -> None:
        """Wait before trying Twilio again; the outage, not each retry, is what is logged."""
        self.outage.failed(reason)
        metrics.OUTBOUND_SENT.labels("retry").inc()
        delay = self.backoff(attempt, first=self.retry_first, cap=self.retry_cap)
        log.debug("Twilio retry %d in %.1fs (%s)", attempt, delay, reason)
        if not await self.pause(delay):
            raise Stopping

    async def _create(self, handed_over: float, fields: dict[str, str]):
        """messages.create, retried on network errors, 429 and 5xx until it goes through. After
        an answer that leaves the outcome open (no answer, a 5xx) the Messages list is read
        before the body is sent again."""
        attempt = 0
        call = partial(self.twilio.messages.create, status_callback=self.status_callback, **fields)
        unknown = False
        while True:
            if unknown:
                found = await self._find_sent(handed_over, fields, settle=False)
                if found is not None:
                    return found
            started = time.perf_counter()
            try:
                message = await self._call(call)
                self.outage.ended()
                _timed("ok", started)
                return message
            except TwilioRestException as error:
                if error.status != 429 and error.status < 500:
                    self.outage.ended()  # Twilio answered: it is up, it refused this one
                    _timed("refused", started)
                    raise
                _timed("error", started)
                reason = f"HTTP {error.status}"
                unknown = error.status >= 500
            except (requests.RequestException, TwilioException) as error:
                _timed("error", started)
                reason = type(error).__name__
                unknown = True
            attempt += 1
            await self._retry(reason, attempt)

    async def _find_sent(self, handed_over: float, fields: dict[str, str], *, settle: bool = True):
        """The message Twilio made of this body since `handed_over`, or None when it has none.

        Read from Twilio's Messages list (to and from this address pair, newest first): the same
        body, created since the intent (less the clock skew), and not a message any delivery
        record of ours already claims (the sender's records have `entry`; a status callback
        alone may have made the record first). Retried while Twilio is away: nothing is sent
        while the outcome is open. A refusal to list (4xx) sends again, and says so."""
        if settle:
            wait = handed_over + self.settle - time.time()
            if wait > 0 and not await self.pause(wait):
                raise Stopping
        since = handed_over - CLOCK_SKEW_SECONDS
        listing = partial(
            self.twilio.messages.list,
            to=fields["to"],
            from_=fields["from_"],
            limit=RECONCILE_PAGE,
            page_size=RECONCILE_PAGE,
        )
        attempt = 0
        while True:
            try:
                # Not the end of an outage: Twilio listing is not Twilio taking messages.
                messages = await self._call(listing)
                break
            except TwilioRestException as error:
                if error.status != 429 and error.status < 500:
                    log.error(
                        "Twilio refused the Messages list (HTTP %s, error %s): a body whose "
                        "outcome is unknown is sent again and may arrive twice",
                        error.status,
                        error.code,
                    )
                    return None
                reason = f"HTTP {error.status}"
            except (requests.RequestException, TwilioException) as error:
                reason = type(error).__name__
            attempt += 1
            await self._retry(reason, attempt)
        for message in messages:
            created = message.date_created
            if created is not None and created.timestamp() < since:
                break  # newest first: everything further down is older still
            if message.body != fields["body"]:
                continue
            if self.db.hexists(keys.delivery(message.sid), "entry"):
                continue  # an earlier body of ours with the same words
            log.info(
                "%s had reached Twilio before the sender lost track of it: recorded, not sent "
                "again",
                message.sid,
            )
            return message
        return None

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
        metrics.OUTBOUND_SENT.labels("rejected").inc()
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
            # A dead letter (given a pipeline) is counted as one, not as not sent.
            metrics.OUTBOUND_SENT.labels("not_sent").inc()
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
        metrics.OUTBOUND_SENT.labels("dead_letter").inc(len(run))
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
    settings.require("sender")  # refuses to start without its secrets (and, in prod, its login)
    sender = Sender(
        settings,
        concurrency=int(os.environ.get("HOTLINE_SENDER_CONCURRENCY", "16")),
        claim_idle=float(os.environ.get("HOTLINE_CLAIM_IDLE", "30")),
    )
    port = os.environ.get("HOTLINE_SENDER_METRICS_PORT")
    if port:
        # No web server of its own, as the worker (docs/operations.md lists the scrape targets).
        metrics.serve(int(port))
    run_forever(sender)


if __name__ == "__main__":
    main()
