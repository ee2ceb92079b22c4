"""Working a case from the console: the actions (checked in permissions.py) and how a case reads.

The pages and the JSON API both go through `Casework`, so a rule holds for both or neither.
No function here logs a message text or a phone number.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from hotline import conversations
from hotline.ids import mask, unseal
from hotline.text import fold_aligned
from referral import accounts, handback
from referral.accounts import Counsellor
from referral.console import permissions
from referral.console.i18n import Translator
from referral.queue import (
    OUTCOMES,
    RISK_LEVELS,
    Case,
    Delivery,
    Message,
    ReferralError,
    Referrals,
)

log = logging.getLogger(__name__)

# Twilio refuses longer bodies; the sender splits what is below into SMS-sized parts.
MAX_REPLY_CHARS = 1600
MAX_NOTE_CHARS = 4000
# A counsellor works the queue from the top; the page shows this many rows and says how many
# more wait, so a busy night (hundreds open) still renders fast and refreshes live cheaply.
QUEUE_ROWS = 100
# WhatsApp only lets a business write freely within 24 hours of the person's last message.
WHATSAPP_WINDOW_SECONDS = 24 * 60 * 60


class InvalidRequest(ReferralError):
    """A request the console refuses before it reaches the queue (empty text, bad outcome…)."""


class UnknownCounsellor(InvalidRequest):
    def __init__(self, name: str) -> None:
        super().__init__(f"there is no active counsellor named {name}")
        self.name = name


# ---------------------------------------------------------------- how a case reads


@dataclass(frozen=True)
class Span:
    """A piece of a message's text; `evidence` names the indicator it carries, if any."""

    text: str
    evidence: str | None = None


@dataclass(frozen=True)
class Line:
    """One line of the transcript as the console shows it."""

    message: Message
    spans: tuple[Span, ...]

    @property
    def evidence(self) -> list[str]:
        return list(dict.fromkeys(span.evidence for span in self.spans if span.evidence))


def risk_badge(case: Case) -> str:
    """The colour a case wears: its risk level, raised to its priority (an emergency intent
    with no indicator phrase is still an emergency)."""
    raised = {"emergency": "emergency", "high": "high"}.get(case.priority, "none")
    level = case.risk_level if case.risk_level in RISK_LEVELS else "none"
    return max(level, raised, key=RISK_LEVELS.index)


def evidence_line(case: Case, t: Translator) -> str:
    """One line on why the case is here, in the counsellor's language: the screening's
    signals; the intent that opened the case when there is none, or when it is an emergency.

    Built from the codes the case keeps, not from its summary, which is in the person's
    language: a counsellor reading English sees English whatever the person wrote in.
    """
    parts = [
        t.code("signal_", name)
        for name in dict.fromkeys(str(i.get("name") or "") for i in case.indicators)
        if name
    ]
    if case.trigger and (not parts or case.trigger == "emergency"):
        parts.append(t.code("intent_", case.trigger))
    return "; ".join(dict.fromkeys(parts))


def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    words = fold_aligned(phrase).split()
    if not words:
        return None
    # The screening collapses spaces in the phrase it quotes; the message may have more.
    return re.compile(r"\s+".join(re.escape(word) for word in words))


def _merge(text: str, marks: list[tuple[int, int, str]]) -> tuple[Span, ...]:
    if not marks:
        return (Span(text),)
    spans: list[Span] = []
    position = 0
    for start, end, name in sorted(marks):
        start = max(start, position)  # overlapping evidence: the first one keeps the words
        if start >= end:
            continue
        if start > position:
            spans.append(Span(text[position:start]))
        spans.append(Span(text[start:end], name))
        position = end
    if position < len(text):
        spans.append(Span(text[position:]))
    return tuple(spans)


def transcript_lines(case: Case) -> list[Line]:
    """The transcript with each indicator's words marked in the message that carries it.

    An indicator names its message by position among the person's messages at screening
    (0 = oldest); when the words are not found there (the transcript was trimmed, or the
    message was retold), the first person message that has them carries the mark.
    """
    person = [m for m in case.transcript if m.author == "person" and m.kind == "message"]
    marks: dict[str, list[tuple[int, int, str]]] = {}
    for indicator in case.indicators:
        pattern = _phrase_pattern(str(indicator.get("phrase") or ""))
        if pattern is None:
            continue
        name = str(indicator.get("name") or "evidence")
        index = indicator.get("message_index")
        candidates = list(person)
        if isinstance(index, int) and 0 <= index < len(person):
            candidates.insert(0, person[index])
        for message in candidates:
            # Folded text keeps every character's place: "NÃO posso sair" matches "nao posso
            # sair" and the mark still falls on the person's own words.
            found = pattern.search(fold_aligned(message.text))
            if found:
                marks.setdefault(message.id, []).append((found.start(), found.end(), name))
                break
    return [Line(m, _merge(m.text, marks.get(m.id, []))) for m in case.transcript]


# Twilio error codes a counsellor may meet, which the words name plainly
# (delivery_reason_twilio_<code>); any other reads as "refused (Twilio error N)".
NAMED_TWILIO_ERRORS = (
    21211,
    21214,
    21408,
    21610,
    21612,
    21614,
    30002,
    30003,
    30004,
    30005,
    30006,
    30007,
    30008,
    63003,
    63016,
    63024,
)


def delivery_words(delivery: Delivery | None, t: Translator) -> str:
    """How far an outgoing line got, in the counsellor's words: "delivered", "not delivered:
    the phone is off or out of reach". Empty for a line that was never sent."""
    if delivery is None:
        return ""
    status = t(f"delivery_{delivery.status}")
    if delivery.status != "failed":
        return status
    return t("delivery_failed_because", status=status, reason=reason_words(delivery.reason, t))


def reason_words(reason: str, t: Translator) -> str:
    words = t.words.get(f"delivery_reason_{reason}")
    if words is not None:
        return words
    if reason.startswith("twilio_"):
        return t("delivery_reason_twilio", code=reason.removeprefix("twilio_"))
    return t("delivery_reason_unknown")


def opted_out(db: redis.Redis, conversation_id: str) -> bool:
    """The person texted STOP (or Twilio says so): nothing can be sent until they write START."""
    if not conversation_id:
        return False
    return conversations.state(db, conversation_id).get("opted_out") == "1"


def last_person_message_at(case: Case) -> float | None:
    times = [m.at for m in case.transcript if m.author == "person" and m.kind == "message"]
    return max(times) if times else None


def outside_whatsapp_window(case: Case, now: float) -> bool:
    """True when a WhatsApp reply may not be delivered: the person last wrote over 24 h ago."""
    if case.channel != "whatsapp":
        return False
    last = last_person_message_at(case)
    return last is None or now - last > WHATSAPP_WINDOW_SECONDS


def masked_address(db: redis.Redis, conversation_id: str, fernet_key: str) -> str:
    """The person's number as a counsellor may see it (country code and last two digits).

    The full number exists only inside this function, and only to be masked.
    """
    sealed = conversations.state(db, conversation_id).get("address") if conversation_id else None
    if not sealed:
        return "•••"
    try:
        return mask(unseal(sealed, fernet_key))
    except ValueError:
        return "•••"


# ---------------------------------------------------------------- the actions


@dataclass(frozen=True)
class Closed:
    case: Case
    # Always true since the hand-back is the close itself (referral.handback asks no Rasa);
    # kept for the API's clients.
    bot_resumed: bool = True


class Casework:
    """One counsellor's requests about cases, each checked against permissions.py."""

    def __init__(
        self, referrals: Referrals, counsellor: Counsellor, clock: Callable[[], float] = time.time
    ) -> None:
        self.referrals = referrals
        self.db = referrals.db
        self.me = counsellor
        self.clock = clock

    def case(self, case_id: str, transcript: bool = True) -> Case:
        return self.referrals.get(case_id, transcript=transcript)

    def queue(self, tab: str, limit: int | None = QUEUE_ROWS) -> list[Case]:
        """The tab's cases in the order counsellors work them, the first `limit` of them."""
        if tab == "mine":
            return self.referrals.list_mine(self.me.name, limit)
        if tab == "open":
            return self.referrals.list_open(limit)
        return self.referrals.list_waiting(limit)

    def queue_size(self, tab: str) -> int:
        return self.referrals.count(tab, self.me.name)

    def claim(self, case_id: str) -> Case:
        case = self.referrals.claim(case_id, self.me.name)
        log.info("case %s claimed by %s", case_id, self.me.name)
        return case

    def reply(self, case_id: str, text: str) -> str:
        text = _text(text, MAX_REPLY_CHARS, "a reply")
        case = self.case(case_id, transcript=False)
        permissions.check(self.me, "reply", case)
        message_id = self.referrals.reply(
            case_id, self.me.name, text, any_holder=permissions.is_supervisor(self.me)
        )
        log.info("case %s: reply sent by %s", case_id, self.me.name)
        return message_id

    def note(self, case_id: str, text: str) -> str:
        text = _text(text, MAX_NOTE_CHARS, "a note")
        permissions.check(self.me, "note", self.case(case_id, transcript=False))
        return self.referrals.note(case_id, self.me.name, text)

    def transfer(self, case_id: str, to: str | None) -> Case:
        """To another active counsellor, or back to the waiting queue when `to` is empty."""
        permissions.check(self.me, "transfer", self.case(case_id, transcript=False))
        target = (to or "").strip().lower() or None
        if target is not None:
            account = accounts.get(self.db, target)
            if account is None or not account.active:
                raise UnknownCounsellor(target)
        case = self.referrals.transfer(case_id, self.me.name, target)
        log.info("case %s transferred by %s to %s", case_id, self.me.name, target or "the queue")
        return case

    def close(self, case_id: str, outcome: str, note: str | None) -> Closed:
        """Close with an outcome: the person gets the closing line, the bot has them again."""
        if outcome not in OUTCOMES:
            raise InvalidRequest(f"outcome must be one of: {', '.join(OUTCOMES)}")
        note = (note or "").strip() or None
        if note is not None:
            note = _text(note, MAX_NOTE_CHARS, "a note")
        permissions.check(self.me, "close", self.case(case_id, transcript=False))
        case = handback.close_and_hand_back(self.referrals, case_id, self.me.name, outcome, note)
        return Closed(case)

    def transfer_targets(self) -> list[Counsellor]:
        return [c for c in accounts.all_counsellors(self.db) if c.active]


def _text(text: str, limit: int, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidRequest(f"{what} cannot be empty")
    if len(text) > limit:
        raise InvalidRequest(f"{what} can be at most {limit} characters")
    return text
