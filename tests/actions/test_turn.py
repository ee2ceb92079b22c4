"""action_validate_slot_mappings: language and risk are set on every user turn."""

from __future__ import annotations

import asyncio

from rasa_sdk.executor import CollectingDispatcher

from actions.turn import ActionReadTurn
from tests.actions.snapshots import action, tracker, user


def slots_after(events: list[dict], slots: dict | None = None) -> dict:
    result = asyncio.run(ActionReadTurn().run(CollectingDispatcher(), tracker(events, slots), {}))
    return {event["name"]: event["value"] for event in result if event["event"] == "slot"}


def test_the_gateways_language_wins() -> None:
    slots = slots_after([user("ok", "affirm", metadata={"language": "sw", "channel": "sms"})])
    assert slots["language"] == "sw"


def test_without_metadata_the_detector_decides() -> None:
    slots = slots_after(
        [user("bonjour, je voudrais rentrer chez moi au Congo", "ask_return_assistance")]
    )
    assert slots["language"] == "fr"


def test_a_short_ambiguous_message_keeps_the_previous_language() -> None:
    slots = slots_after([user("ok", "affirm")], slots={"language": "pt"})
    assert slots["language"] == "pt"


def test_an_unknown_language_in_metadata_is_ignored() -> None:
    slots = slots_after([user("obrigado pela ajuda", "thanks", metadata={"language": "xx"})])
    assert slots["language"] == "pt"


def test_an_ordinary_question_carries_no_risk() -> None:
    slots = slots_after([user("como posso voltar para Moçambique?", "ask_return_assistance")])
    assert slots["risk_level"] == "none"
    assert slots["risk_action"] == "none"


def test_risk_that_builds_up_asks_for_an_offer_once() -> None:
    events = [
        user("trabalho numa machamba em Limpopo", "out_of_scope", 0.5),
        user("o patrao guardou o meu passaporte", "ask_documents", 0.6),
        user("diz que devo dinheiro do transporte e nao deixa sair", "out_of_scope", 0.5),
    ]
    first = slots_after(events)
    assert first["risk_level"] in ("high", "emergency")
    assert first["risk_action"] == "offer"
    # Once the counsellor was offered, the bot does not keep offering.
    later = slots_after([*events, action("action_offer_counsellor"), user("ok", "affirm")])
    assert later["risk_action"] == "none"


def test_a_hand_back_starts_a_new_window() -> None:
    events = [
        user("help they are beating me now", "emergency", 0.98),
        action("action_open_case"),
        {"event": "resume"},
        user("thank you", "thanks"),
    ]
    assert slots_after(events)["risk_level"] == "none"
