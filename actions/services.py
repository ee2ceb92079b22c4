"""action_list_services: answers "where can I find help" from the service directory."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from protection import directory
from referral.texts import text


def services_reply(question: str, language: str, types: tuple[str, ...] = ()) -> str | None:
    """The directory lines for a question, or None when nothing matches."""
    found = directory.match(directory.load(), question, types)
    return directory.format_services(found, language) if found else None


class ActionListServices(Action):
    def name(self) -> str:
        return "action_list_services"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        language = tracker.get_slot("language") or "pt"
        reply = services_reply(tracker.latest_message.get("text") or "", language)
        if reply is None:
            dispatcher.utter_message(text=text("utter_no_services", language))
        else:
            dispatcher.utter_message(text=text("utter_services_intro", language) + "\n" + reply)
        return []
