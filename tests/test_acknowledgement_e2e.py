"""Issue 11 through the real Rasa and action servers: "ok" is acknowledged, "ok" after the
consent question opens the case, a request in words for another language gets the codes
and no counsellor, and a first "Hello" is greeted in English with the way to switch."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.domain import responses

GREETINGS = {"pt": "bom dia", "en": "good morning", "fr": "salut", "sw": "mambo"}
# The word each language's people write to say "fine", with nothing asked.
OK = {"pt": "ok", "en": "okay", "fr": "d'accord", "sw": "sawa"}
# After the consent question: the same kind of word means yes.
CONSENT = {"pt": "ok obg", "en": "ok", "fr": "d'accord", "sw": "sawa"}
DISCLOSURES = {
    "pt": "o patrao ficou com o meu passaporte e nao me paga",
    "en": "my boss took my passport and doesnt pay me",
    "fr": "le patron a pris mon passeport et ne me paie pas",
    "sw": "bosi amechukua pasipoti yangu na hanilipi",
}
# The issue's own words, which no training example copies.
LANGUAGE_REQUESTS = [
    ("en", "now I want to write in English please"),
    ("en", "can we speak French"),
    ("fr", "je préfère parler en français"),
    ("sw", "nataka kuongea Kiswahili"),
    ("sw", "naomba Kiingereza"),
    ("pt", "quero falar em portugues"),
]
HANDOFF_ACTIONS = {"action_offer_counsellor", "action_open_case"}


def _sender() -> str:
    return f"c{uuid.uuid4().hex[:31]}"


def say(stack: dict, sender: str, text: str, language: str | None = None) -> list[str]:
    body: dict = {"sender": sender, "message": text}
    if language is not None:
        body["metadata"] = {"language": language, "channel": "sms"}
    reply = httpx.post(f"{stack['rasa_url']}/webhooks/rest/webhook", json=body, timeout=60)
    assert reply.status_code == 200
    return [m["text"] for m in reply.json() if "text" in m]


def actions_of_last_turn(stack: dict, sender: str) -> list[str]:
    token = stack["settings"].rasa_token.get_secret_value()
    tracker = httpx.get(
        f"{stack['rasa_url']}/conversations/{sender}/tracker", params={"token": token}, timeout=60
    ).json()
    events = tracker["events"]
    last_user = max(i for i, e in enumerate(events) if e["event"] == "user")
    return [e["name"] for e in events[last_user:] if e["event"] == "action"]


@pytest.mark.parametrize("language", ["pt", "en", "fr", "sw"])
def test_ok_with_nothing_asked_says_what_the_person_can_do_next(rasa_stack, language: str) -> None:
    sender = _sender()
    say(rasa_stack, sender, GREETINGS[language], language)
    assert say(rasa_stack, sender, OK[language], language) == [
        responses()["utter_acknowledge"][language]
    ]
    assert not HANDOFF_ACTIONS & set(actions_of_last_turn(rasa_stack, sender))


@pytest.mark.parametrize("language", ["pt", "en", "fr", "sw"])
def test_ok_after_the_consent_question_opens_the_case(rasa_stack, language: str) -> None:
    sender = _sender()
    offer = say(rasa_stack, sender, DISCLOSURES[language], language)
    assert any(responses()["utter_ask_consent"][language] in text for text in offer)
    say(rasa_stack, sender, CONSENT[language], language)
    assert "action_open_case" in actions_of_last_turn(rasa_stack, sender)


@pytest.mark.parametrize("language,text", LANGUAGE_REQUESTS)
def test_asking_for_a_language_in_words_gets_the_codes_and_no_counsellor(
    rasa_stack, language: str, text: str
) -> None:
    sender = _sender()
    assert say(rasa_stack, sender, text, language) == [
        responses()["utter_language_choice"][language]
    ]
    assert not HANDOFF_ACTIONS & set(actions_of_last_turn(rasa_stack, sender))


def test_a_first_hello_is_greeted_in_english_with_the_way_to_switch(rasa_stack) -> None:
    """No metadata: the action server's language detection decides, as for the triage."""
    texts = say(rasa_stack, _sender(), "Hello")
    assert texts == [responses()["utter_greet"]["en"]]
    assert texts[0].endswith(
        "For another language write PT (Portugues), FR (Francais) or SW (Kiswahili)."
    )
