"""Runs on every user turn (Rasa calls it from action_extract_slots): language and risk."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import latest_metadata, ran, user_messages, window
from hotline.language import LANGUAGES, choose_language
from protection import risk


def turn_language(tracker: Tracker) -> str:
    """The gateway's choice when it sent one, else our own detector with the last language as prior."""
    chosen = latest_metadata(tracker).get("language")
    if chosen in LANGUAGES:
        return chosen
    return choose_language(tracker.latest_message.get("text") or "", tracker.get_slot("language"))


class ActionReadTurn(Action):
    """Sets `language`, `risk_level` and `risk_action` before the next action is chosen."""

    def name(self) -> str:
        return "action_validate_slot_mappings"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        events = window(tracker)
        assessment = risk.assess(user_messages(events))
        action = risk.risk_action(
            assessment,
            offered_since_window=ran(events, "action_offer_counsellor"),
            # The router says so when the person stepped back to the bot from an open case;
            # it screens their messages for that case itself.
            case_open=latest_metadata(tracker).get("case_open") is True,
        )
        return [
            SlotSet("language", turn_language(tracker)),
            SlotSet("risk_level", assessment.level),
            SlotSet("risk_action", action),
        ]
