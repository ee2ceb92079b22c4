"""The handoff actions: offer a counsellor, open a case, respect a refusal.

Opening a case is all it takes to hand the conversation to a counsellor: the conversation router
(channels/router.py) sends nothing to Rasa while the queue holds an open case for it, so the
bot is never paused and closing the case needs nothing from Rasa.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import latest_metadata, user_messages, window
from actions.services import services_reply
from hotline import conversations, store
from hotline.settings import get_settings
from protection import risk
from referral import rota, waiting
from referral.escalation import priority_for
from referral.queue import Priority, Referrals
from referral.texts import text

log = logging.getLogger(__name__)

# Which kinds of service (data/services.yml types) help with which indicator.
SERVICES_FOR_INDICATOR = {
    "minor": ("child_helpline",),
    "danger_now": ("police",),
    "threats_or_violence": ("police", "helpline"),
    "sexual_exploitation": ("health", "helpline"),
    "wages_withheld": ("legal_aid",),
    "debt_bondage": ("legal_aid",),
    "deception": ("legal_aid",),
    "excessive_hours": ("legal_aid",),
    "documents_confiscated": ("office", "helpline"),
    "not_free_to_leave": ("helpline", "police"),
    "isolation": ("helpline",),
}
DEFAULT_SERVICES = ("office", "helpline")


def _latest_intent(tracker: Tracker) -> tuple[str | None, float]:
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def _language(tracker: Tracker) -> str:
    chosen = tracker.get_slot("language") or latest_metadata(tracker).get("language")
    return chosen if chosen in risk.LANGUAGES else "pt"


def read_danger(tracker: Tracker) -> bool:
    """Whether the model read the latest message as danger now, however sure it was.

    Any such reading gets the emergency numbers in the same reply, whatever level the case
    opens at: a person in danger must never be left with only "a counsellor will write".
    """
    intent, _ = _latest_intent(tracker)
    return intent == "emergency"


def consent_for(tracker: Tracker, intent: str | None, priority: Priority) -> str:
    """How the person agreed: yes to the offer, asked themselves, or not asked (danger, a child)."""
    if priority == "emergency" or intent == "child_alone":
        return "not_asked"
    if intent == "affirm" and _offered_just_before(tracker):
        return "given"
    return "requested"


def _offered_just_before(tracker: Tracker) -> bool:
    events = tracker.events or []
    seen_user = False
    for event in reversed(events):
        if event.get("event") == "user":
            if seen_user:
                return False
            seen_user = True
        elif event.get("event") == "action" and seen_user and event.get("name") != "action_listen":
            return event.get("name") == "action_offer_counsellor"
    return False


def bot_transcript(events: list[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """(when, person|bot, text) of the conversation so far, for the counsellor."""
    lines = []
    for event in events:
        kind = event.get("event")
        if kind in ("user", "bot") and event.get("text"):
            author = "person" if kind == "user" else "bot"
            lines.append((float(event.get("timestamp") or 0.0), author, event["text"]))
    return lines


def services_for(indicators: list[str], language: str) -> str | None:
    """Directory lines for what the person disclosed; the general ones when none match.

    A person who declines a counsellor always leaves with a number (wage theft asks for legal
    aid, which the directory may not have yet).
    """
    kinds: list[str] = []
    for name in indicators:
        kinds += [k for k in SERVICES_FOR_INDICATOR.get(name, ()) if k not in kinds]
    return services_reply("", language, tuple(kinds or DEFAULT_SERVICES)) or services_reply(
        "", language, DEFAULT_SERVICES
    )


_db: redis.Redis | None = None


def _default_db() -> redis.Redis:
    global _db
    if _db is None:
        _db = store.connect(get_settings())
    return _db


class ActionOfferCounsellor(Action):
    """High risk: acknowledge, one safety sentence, ask consent to connect with a counsellor."""

    def name(self) -> str:
        return "action_offer_counsellor"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        assessment = risk.assess(user_messages(window(tracker)))
        intent, _ = _latest_intent(tracker)
        language = _language(tracker)
        if intent == "report_third_party" or (
            intent != "report_exploitation" and assessment.about_other
        ):
            dispatcher.utter_message(text=text("utter_acknowledge_third_party", language))
        else:
            dispatcher.utter_message(text=text("utter_acknowledge_disclosure", language))
        dispatcher.utter_message(text=text("utter_safety_tip", language))
        if read_danger(tracker):
            dispatcher.utter_message(text=text("utter_danger_numbers", language))
        dispatcher.utter_message(text=text("utter_ask_consent", language))
        return []


class ActionOpenCase(Action):
    """Opens (or updates) the conversation's case; counsellors take over from the next message."""

    def __init__(
        self, db: redis.Redis | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._clock = clock

    def name(self) -> str:
        return "action_open_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        events = window(tracker)
        assessment = risk.assess(user_messages(events))
        intent, _ = _latest_intent(tracker)
        priority = priority_for(assessment)
        language = _language(tracker)
        child = intent == "child_alone"
        urgent = priority in ("emergency", "high")
        now = self._clock()
        db = self._db or _default_db()
        try:
            channel = latest_metadata(tracker).get("channel") or conversations.state(
                db, tracker.sender_id
            ).get("channel", "sms")
            Referrals(db, clock=self._clock).open_case(
                tracker.sender_id,
                priority=priority,
                channel=channel,
                language=language,
                risk_level=assessment.level,
                indicators=[
                    {"name": i.name, "message_index": i.message_index, "phrase": i.phrase}
                    for i in assessment.indicators
                ],
                summary=assessment.summary(language),
                about_other=assessment.about_other,
                consent=consent_for(tracker, intent, priority),  # type: ignore[arg-type]
                trigger=intent or "",
                transcript=bot_transcript(events),
            )
            # Asking for a person again after stepping back to the bot: back to the case.
            waiting.return_to_case(db, tracker.sender_id)
            staffed = rota.on_duty(db, now)
        except redis.RedisError as error:
            # No case could be opened: give the numbers and keep the bot talking.
            log.error("could not open a case (%s)", type(error).__name__)
            shift = rota.next_shift(now, language)
            name = "utter_emergency" if priority == "emergency" else "utter_nobody_on_duty_urgent"
            dispatcher.utter_message(text=text(name, language, next_shift=shift))
            return [SlotSet("next_shift", shift)]

        result: list[dict[str, Any]] = []
        if priority == "emergency":
            dispatcher.utter_message(text=text("utter_emergency", language))
            if staffed:
                # Off duty the person is told when someone will answer instead, below.
                dispatcher.utter_message(text=text("utter_emergency_alerting", language))
        elif child:
            dispatcher.utter_message(text=text("utter_child_protection", language))
        else:
            dispatcher.utter_message(text=text("utter_case_opened", language))
        if priority != "emergency" and read_danger(tracker):
            dispatcher.utter_message(text=text("utter_danger_numbers", language))
        if not staffed:
            shift = rota.next_shift(now, language)
            # The emergency reply already carries the numbers; the others need them when at risk.
            needs_numbers = urgent and priority != "emergency"
            name = "utter_nobody_on_duty_urgent" if needs_numbers else "utter_nobody_on_duty"
            dispatcher.utter_message(text=text(name, language, next_shift=shift))
            result.append(SlotSet("next_shift", shift))
        return result


class ActionDeclineCounsellor(Action):
    """No to the offer: respect it, give matching services and how to ask for a person later."""

    def name(self) -> str:
        return "action_decline_counsellor"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        assessment = risk.assess(user_messages(window(tracker)))
        language = _language(tracker)
        dispatcher.utter_message(text=text("utter_consent_declined", language))
        names = list(dict.fromkeys(i.name for i in assessment.indicators))
        listing = services_for(names, language)
        if listing:
            dispatcher.utter_message(text=text("utter_services_intro", language) + "\n" + listing)
        return []
