"""The conversation router: for every message a person sends, who answers it and what they are told.

One place and one order, for every inbound message:
  1. a message without text gets a "please write" note;
  2. an open case gets the message in its transcript (the counsellor sees everything, reserved
     words included) and the message is screened like a bot turn (`_screen`);
  3. keywords: STOP, then, for an opted-out person, nothing but START;
  4. erasure: the answer to a DELETE question (YES erases; NO only cancels);
  5. the other reserved words (START, HELP, a language pick, DELETE), then a language asked for
     in words ("now I want to write in English");
  6. an open case: the counsellor answers. The person is acknowledged (referral/waiting.py) and
     can step back to the bot with the back word; a plain request nobody has taken is withdrawn;
  7. the bot (Rasa), which may open a case with its actions.
"A case is open" has one source of truth, the queue's open-case key (referral/queue.py): Rasa is
never paused, the router simply does not ask it while a case is open, so closing a case needs
nothing from Rasa (referral/handback.py).

The router only reads and decides; the writes it decides on (how to reach the person, language,
opt-out, replies, short-lived notes) are gathered in an `Outcome`, which the worker
(channels/worker.py, the transport) commits with the message's acknowledgement in one
transaction. Writes that are not the router's own are atomic in themselves: the relay into a
case and raising it (referral/queue.py scripts), withdrawing a request, and an erasure
(referral/privacy.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from channels import history
from channels import keywords as kw
from channels.inbound import InboundEntry
from hotline import conversations, keys, metrics
from hotline.conversations import Channel, Source
from hotline.language import choose_language
from hotline.rasa import MESSAGE_ID, RasaClient, RasaTimeout, RasaUnavailable
from protection import risk
from referral import escalation, rota, waiting
from referral.queue import Case, CaseClosed, CaseNotFound, Referrals, record_outgoing
from referral.texts import text as safety_text

log = logging.getLogger(__name__)

DELETE_PENDING_TTL = 600  # a DELETE waits this long for its YES
WAITING_NOTE_TTL = 900  # one "we received your message" per conversation per outage
# A message that waited this long in the inbound stream (a backlog) gets that note too.
BACKLOG_NOTE_AFTER = 8.0
MEDIA_NOTE_TTL = 600  # ten photos in a row get one "please write" note, not ten
# The person's last messages in the case that the screen reads together: a disclosure spread
# over a few short messages adds up, as it does in the bot's own window.
SCREEN_WINDOW = 6
# Parse results of recent texts, in memory only, so screening a case's window does not ask the
# model again for messages it read a moment ago.
_READINGS_KEPT = 512
# Lines of an open case the router reads per message: the screen's window of the person's
# messages, with the bot's and counsellor's lines between them.
RECENT_LINES = 8 * SCREEN_WINDOW
# Field of the conversation hash: the MessageSid last copied into the open case.
RELAYED = "relayed"


class RasaWaiting(Exception):
    """Rasa is down or too slow: the message waits in the stream."""


class RasaTimedOut(Exception):
    """Rasa took the message and did not answer in time: the message waits in the stream,
    and this counts toward its failure limit (a message Rasa never finishes is dead-lettered
    rather than sent to Rasa for ever)."""


@dataclass
class Outcome:
    """Every write handling one message decided, applied in one transaction (`apply`): with the
    acknowledgement when the message is done, or at once for a note while it waits for Rasa.

    With `case_id` set, every reply is also a line of that case's transcript (what the person
    was told, with its delivery status), not only a message to send."""

    remember: tuple[Channel, str] | None = None  # channel and sealed address; None once erased
    replies: list[tuple[str, Source]] = field(default_factory=list)
    case_id: str | None = None
    # Who answered, for the metrics (hotline.metrics.ANSWERED_BY); the router sets it.
    answered_by: str = "keyword"
    set_fields: dict[str, str] = field(default_factory=dict)
    del_fields: list[str] = field(default_factory=list)
    set_keys: dict[str, tuple[str, int]] = field(default_factory=dict)
    del_keys: list[str] = field(default_factory=list)

    def say(self, text: str, source: Source = "system") -> None:
        self.replies.append((text, source))

    def apply(self, pipe: redis.client.Pipeline, cid: str) -> None:
        """Add the writes to a transaction (the caller executes it)."""
        if self.remember:
            channel, sealed = self.remember
            conversations.remember(pipe, cid, channel=channel, sealed_address=sealed)
        now = time.time()
        for text, source in self.replies:
            if self.case_id:
                record_outgoing(
                    pipe, self.case_id, text, author=source, at=now, conversation_id=cid
                )
            else:
                conversations.queue_reply(pipe, cid, text, source=source)
        if self.set_fields:
            pipe.hset(keys.conversation(cid), mapping=self.set_fields)
        if self.del_fields:
            pipe.hdel(keys.conversation(cid), *self.del_fields)
        for name, (value, ttl) in self.set_keys.items():
            pipe.set(name, value, ex=ttl)
        if self.del_keys:
            pipe.delete(*self.del_keys)


Eraser = Callable[[redis.Redis, RasaClient, str], Awaitable[object]]


class Router:
    """Decides every inbound message (see the module's docstring for the order)."""

    def __init__(
        self,
        db: redis.Redis,
        rasa: RasaClient,
        keywords_file: Path,
        eraser: Eraser,
        *,
        slow_after: float = 10.0,
        note_after: float = BACKLOG_NOTE_AFTER,
        clock: Callable[[], float] = time.time,
        check_saved: bool = False,
    ) -> None:
        # Past one machine: Rasa 3.6 answers even when it could not save the turn to Redis
        # (its FailSafeTrackerStore falls back to a tracker in memory, as in a failover), so
        # an answer counts only once the turn is in the tracker in Redis.
        self.check_saved = check_saved
        self.db = db
        self.rasa = rasa
        self.keywords_file = keywords_file
        self.eraser = eraser
        self.slow_after = slow_after
        self.note_after = note_after
        self.clock = clock
        self.referrals = Referrals(db, clock=clock)
        self._readings: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @property
    def keywords(self) -> kw.Keywords:
        """Re-read when an editor changes data/keywords.yml: live at the next message."""
        return kw.load(self.keywords_file)

    async def route(
        self, message: InboundEntry, label: str = "", *, tried: bool = False
    ) -> Outcome:
        """`tried`: the message may have reached Rasa before (a worker died or timed out on
        it), so Rasa's tracker is read before it is sent again."""
        cid = message.conversation_id
        state = conversations.state(self.db, cid)
        previous = state.get("language")
        opted_out = state.get("opted_out") == "1"
        outcome = Outcome(remember=(message.channel, message.sealed_address))
        text = message.body

        if not text.strip():
            # One worker answers a conversation at a time (its order list), so reading first is safe.
            if not opted_out and not self.db.exists(keys.media_note(cid)):
                outcome.set_keys[keys.media_note(cid)] = ("1", MEDIA_NOTE_TTL)
                outcome.say(self.keywords.note("media_only", previous))
            log.info("%s has no text (%d media)", label, message.media_count)
            outcome.answered_by = "media"
            return outcome

        case = self._relay(cid, text, message.message_sid, state.get(RELAYED))
        outcome.case_id = case.id if case else None
        if case:
            # Screened even for a person who opted out (the case rises for the counsellor);
            # they are only not written to.
            language = choose_language(text, previous)
            await self._screen(case, text, language, outcome if not opted_out else Outcome())

        reserved = self.keywords.match(text)
        if reserved and reserved.kind == "stop":
            if not opted_out:
                outcome.say(self.keywords.note("opted_out", reserved.language(previous)))
                outcome.set_fields["opted_out"] = "1"
            log.info("conversation %s opted out", cid)
            return outcome
        if opted_out:
            if reserved and reserved.kind == "start":
                outcome.del_fields.append("opted_out")
                outcome.say(self.keywords.note("opted_in", reserved.language(previous)))
                log.info("conversation %s opted in again", cid)
            else:
                log.info("conversation %s is opted out; message not answered", cid)
            outcome.answered_by = "opted_out"
            return outcome

        asked_in = self.db.get(keys.delete_pending(cid))  # the language the question was in
        if asked_in:
            outcome.del_keys.append(keys.delete_pending(cid))
            if self.keywords.confirms(text):
                outcome.answered_by = "erasure"
                return await self._erase(cid, asked_in, outcome)
            outcome.say(self.keywords.note("delete_cancelled", asked_in))
            if self.keywords.declines(text):
                return outcome  # a plain NO answers the question; the bot has nothing to add

        if reserved and reserved.kind != "back":
            return self._reserved(reserved, cid, previous, outcome)
        asked_for = self.keywords.language_request(text)
        if asked_for:
            outcome.set_fields["language"] = asked_for
            outcome.say(self.keywords.note("language_set", asked_for))
            log.info("conversation %s asked for another language in words", cid)
            outcome.answered_by = "language"
            return outcome

        language = choose_language(text, previous)
        if language != previous:
            outcome.set_fields["language"] = language
        if message.truncated:
            outcome.say(self.keywords.note("truncated", language))
        if case:
            outcome.answered_by = "case"
            if reserved and reserved.kind == "back":
                return self._step_back(case, language, outcome)
            if not waiting.with_bot(self.db, cid, case.id):
                self._acknowledge(case, language, outcome)
                return outcome
        for reply in await self._ask_rasa(
            cid, text, language, message, outcome, case_open=case is not None, tried=tried
        ):
            outcome.say(reply, "bot")
        outcome.answered_by = "bot"
        # A case this turn opened gets the bot's hand-off texts in its transcript.
        outcome.case_id = self.referrals.open_case_id(cid)
        self._keep_history_short(cid)
        return outcome

    def _keep_history_short(self, cid: str) -> None:
        """A turn costs the same however long the conversation is (channels/history.py)."""
        try:
            history.compact(self.db, cid)
        except (redis.RedisError, ValueError) as error:
            # The answer stands; the next turn tries again.
            log.warning("conversation %s: history not compacted (%s)", cid, type(error).__name__)

    # ------------------------------------------------------------ an open case

    def _relay(self, cid: str, text: str, sid: str, relayed: str | None) -> Case | None:
        """Copy the message into the conversation's open case; the case as it was before, or
        None when there is none (or it closed a moment ago: the bot answers again).

        A message tried again (Rasa away while the person talks to the bot, Redis restarting)
        is copied once: the conversation remembers the last MessageSid it relayed.
        """
        case_id = self.referrals.open_case_id(cid)
        if not case_id:
            return None
        try:
            # The last lines only: enough for the screen's window and the waiting note, and
            # the same cost on a case's thousandth message as on its first.
            case = replace(
                self.referrals.get(case_id, transcript=False),
                transcript=self.referrals.recent_lines(case_id, RECENT_LINES),
            )
            if sid and sid == relayed:
                # Read as it was before this message, so the screen counts it once.
                lines = case.transcript
                mine = [i for i, line in enumerate(lines) if line.author == "person"]
                if mine and lines[mine[-1]].text == text:
                    case = replace(case, transcript=lines[: mine[-1]] + lines[mine[-1] + 1 :])
                return case
            self.referrals.append_message(case_id, author="person", text=text, actor="person")
            if sid:
                self.db.hset(keys.conversation(cid), RELAYED, sid)
        except (CaseClosed, CaseNotFound):
            return None
        return case

    async def _screen(self, case: Case, text: str, language: str, outcome: Outcome) -> None:
        """Screen a message written into an open case as the bot screens its turns.

        A rise raises the case (priority, level, evidence; the consoles move it and alert on an
        emergency). Danger now in the message gets the emergency numbers at once, whether or
        not the case was already an emergency: the person may be writing to say it is
        happening again.
        """
        earlier = [
            line.text
            for line in case.transcript
            if line.author == "person" and line.kind == "message"
        ][-(SCREEN_WINDOW - 1) :]
        turns, read_by_model = await self._read([*earlier, text])
        assessment = risk.assess(turns, use_model=read_by_model)
        raised = escalation.escalate(self.referrals, case, assessment)
        if raised:
            log.info(
                "case %s raised to %s by a message written into it",
                case.id,
                escalation.priority_for(assessment),
            )
        danger_now = risk.assess(turns[-1:], use_model=read_by_model).level == "emergency" or (
            raised and assessment.level == "emergency"
        )
        if not danger_now:
            return
        now = self.clock()
        outcome.say(safety_text("utter_emergency", language))
        if rota.on_duty(self.db, now):
            outcome.say(safety_text("utter_emergency_alerting", language))
        else:
            shift = rota.next_shift(now, language)
            outcome.say(safety_text("utter_nobody_on_duty", language, next_shift=shift))
        # The numbers and when someone answers are this message's acknowledgement.
        outcome.set_keys[keys.waiting_ack(case.conversation_id)] = ("1", waiting.ACK_INTERVAL)

    async def _read(self, texts: list[str]) -> tuple[list[risk.Turn], bool]:
        """The model's reading of each text; without the model (Rasa away), the lexicon alone
        reads them, so a message written while waiting is screened even then."""
        readings: list[dict[str, Any]] = []
        try:
            for text in texts:
                reading = self._readings.get(text)
                if reading is None:
                    reading = await self.rasa.parse(text)
                    self._readings[text] = reading
                    while len(self._readings) > _READINGS_KEPT:
                        self._readings.popitem(last=False)
                readings.append(reading)
        except RasaUnavailable:
            return [risk.Turn(text, {}) for text in texts], False
        return [risk.Turn.from_parse(t, r) for t, r in zip(texts, readings, strict=True)], True

    def _acknowledge(self, case: Case, language: str, outcome: Outcome) -> None:
        if any(source == "system" for _, source in outcome.replies):
            return  # already told something this turn (the emergency numbers)
        texts = waiting.acknowledgement(self.db, case, language, self.clock())
        for line in texts:
            outcome.say(line)
        if texts:
            outcome.set_keys[keys.waiting_ack(case.conversation_id)] = ("1", waiting.ACK_INTERVAL)

    def _step_back(self, case: Case, language: str, outcome: Outcome) -> Outcome:
        """The back word: a plain request nobody has taken is withdrawn; a case at risk or in a
        counsellor's hands stays open (whoever holds the phone cannot close it with one word)
        and the bot answers meanwhile, its texts copied into the case."""
        if case.status == "waiting" and not waiting.at_risk(case):
            try:
                self.referrals.close(case.id, "person", "declined", None)
            except CaseClosed:
                pass
            outcome.say(safety_text("utter_back_to_bot_cancelled", language))
            log.info("case %s withdrawn by the person", case.id)
        else:
            outcome.set_fields[waiting.WITH_BOT] = case.id
            outcome.say(safety_text("utter_back_to_bot_kept", language))
            log.info("case %s: the person went back to the bot while it stays open", case.id)
        return outcome

    # ------------------------------------------------------------ keywords and erasure

    def _reserved(
        self, reserved: kw.Reserved, cid: str, previous: str | None, outcome: Outcome
    ) -> Outcome:
        language = reserved.language(previous)
        if reserved.kind == "start":
            outcome.say(self.keywords.note("opted_in", language))
        elif reserved.kind == "help":
            outcome.say(self.keywords.note("help", language))
        elif reserved.kind == "language":
            outcome.set_fields["language"] = language
            outcome.say(self.keywords.note("language_set", language))
        elif reserved.kind == "delete":
            outcome.set_keys[keys.delete_pending(cid)] = (language, DELETE_PENDING_TTL)
            if keys.delete_pending(cid) in outcome.del_keys:
                outcome.del_keys.remove(keys.delete_pending(cid))
            outcome.say(self.keywords.note("delete_confirm", language))
        log.info("conversation %s: reserved word (%s)", cid, reserved.kind)
        return outcome

    async def _erase(self, cid: str, language: str, outcome: Outcome) -> Outcome:
        await self.eraser(self.db, self.rasa, cid)
        log.info("conversation %s erased at the person's request", cid)
        # The erasure removed the conversation's state and its cases; only the sealed address
        # stays a few minutes so this confirmation can still be delivered. Remembering the
        # person again would keep that address for good.
        outcome.remember = None
        outcome.case_id = None
        outcome.say(self.keywords.note("delete_done", language))
        return outcome

    # ------------------------------------------------------------ the bot

    async def _ask_rasa(
        self,
        cid: str,
        text: str,
        language: str,
        message: InboundEntry,
        outcome: Outcome,
        *,
        case_open: bool,
        tried: bool,
    ) -> list[str]:
        """The bot's answer to this turn; each user turn reaches Rasa once.

        The message's id rides in the metadata, which Rasa keeps on the turn's user event. A
        message that may have reached Rasa before (`tried`) is looked up in the tracker first,
        and the bot's answer recorded there is taken instead of asking again.
        """
        # Wall time, as the gateway stamped received_at (self.clock may be a test's hour).
        if time.time() - message.received_at > self.note_after:
            self._note_waiting(cid, language, outcome)  # a backlog: the person waited already
        metadata: dict[str, Any] = {"language": language, "channel": message.channel}
        if message.message_sid:
            metadata[MESSAGE_ID] = message.message_sid
        if case_open:
            # The person stepped back to the bot from an open case: the router screens their
            # messages for the case, and the bot must not offer a counsellor again.
            metadata["case_open"] = True
        try:
            if tried and message.message_sid:
                earlier = await self._answered_before(cid, message.message_sid)
                if earlier is not None:
                    log.info(
                        "%s was answered by Rasa before; its answer is taken from the tracker",
                        message.message_sid,
                    )
                    return earlier
        except RasaUnavailable as error:
            self._note_waiting(cid, language, outcome)
            log.warning("Rasa's tracker unreadable (%s); conversation %s waits", error, cid)
            raise RasaWaiting from error
        started = time.perf_counter()
        outcome_label = "error"
        call = asyncio.ensure_future(self.rasa.send(cid, text, metadata))
        try:
            done, _ = await asyncio.wait({call}, timeout=self.slow_after)
            if not done:
                self._note_waiting(cid, language, outcome)
            messages = await call
            outcome_label = "ok"
            if self.check_saved and message.message_sid and not self._saved(cid, message):
                log.warning(
                    "%s: Rasa answered without saving the turn to Redis; asked again later",
                    message.message_sid,
                )
                raise RasaWaiting
        except RasaTimeout as error:
            outcome_label = "timeout"
            self._note_waiting(cid, language, outcome)
            log.warning("Rasa gave conversation %s no answer in time (%s)", cid, error)
            raise RasaTimedOut(str(error)) from error
        except RasaUnavailable as error:
            self._note_waiting(cid, language, outcome)
            log.warning("Rasa unavailable (%s); conversation %s waits", error, cid)
            raise RasaWaiting from error
        finally:
            if not call.done():
                call.cancel()
            metrics.RASA_CALL_SECONDS.labels(outcome_label).observe(time.perf_counter() - started)
        return [m["text"] for m in messages if m.get("text")]

    async def _answered_before(self, cid: str, message_sid: str) -> list[str] | None:
        """The bot's answer to the message if Rasa has it, None if it never got it; waits
        (RasaWaiting) while Rasa may still be on an earlier attempt."""
        if self._rasa_holds(cid):
            # An earlier attempt is still in Rasa's hands (the worker that sent it is gone,
            # but Rasa finishes or drops the turn first): its events are not saved yet.
            log.info("conversation %s: Rasa is still on an earlier attempt; waiting", cid)
            raise RasaWaiting
        if self.check_saved and not self._saved(cid, message_sid):
            return None  # what Rasa answers from memory after a lost save is not the turn
        return await self.rasa.answered(cid, message_sid)

    def _saved(self, cid: str, message: InboundEntry | str) -> bool:
        """The turn is in Rasa's tracker in Redis (MessageSids are unique random tokens)."""
        sid = message if isinstance(message, str) else message.message_sid
        return sid in (self.db.get(keys.tracker(cid)) or "")

    def _rasa_holds(self, cid: str) -> bool:
        """Rasa holds the conversation's ticket lock (its lock store, endpoints.yml) while it
        handles a message, from the request until the turn's events are saved; an expired
        ticket is one a dead Rasa left behind."""
        lock = self.db.get(keys.rasa_lock(cid))
        if not lock:
            return False
        try:
            tickets = [json.loads(t) for t in json.loads(lock).get("tickets", [])]
            return any(float(t["expires"]) > time.time() for t in tickets)
        except (ValueError, TypeError, KeyError, AttributeError):
            return False  # not a lock this code understands: Rasa's own expiry applies

    def acknowledge_backlog(self, message: InboundEntry) -> bool:
        """Tell a person whose message waits in a backlog that it arrived, once per outage
        (the same note and key as a slow or absent Rasa); True when the note was queued.

        Not for a person who opted out, nor for the STOP that opts them out (they are only
        told they are out), nor for an empty message (it gets the "please write" note)."""
        cid = message.conversation_id
        if not message.body.strip() or self.db.exists(keys.waiting_note(cid)):
            return False
        state = conversations.state(self.db, cid)
        if state.get("opted_out") == "1":
            return False
        reserved = self.keywords.match(message.body)
        if reserved and reserved.kind == "stop":
            return False
        language = choose_language(message.body, state.get("language"))
        return self._note_waiting(
            cid, language, Outcome(remember=(message.channel, message.sealed_address))
        )

    def _note_waiting(self, cid: str, language: str, outcome: Outcome) -> bool:
        """At most one "we received your message" per conversation while Rasa is away or a
        backlog holds the message; True when this call queued it.

        Written at once, while the message itself stays pending; with how to reach the
        person, so the note reaches someone writing for the first time. Watched, because the
        backlog watch of any worker and the worker answering may note the same conversation.
        """
        key = keys.waiting_note(cid)
        with self.db.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    first = not pipe.exists(key)
                    note = Outcome(remember=outcome.remember)
                    # Set again when it exists: the outage goes on, so its one note still counts.
                    note.set_keys[key] = ("1", WAITING_NOTE_TTL)
                    if first:
                        note.say(self.keywords.note("received_will_answer", language))
                    pipe.multi()
                    note.apply(pipe, cid)
                    pipe.execute()
                    return first
                except redis.WatchError:
                    continue
