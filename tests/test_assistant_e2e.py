"""The real Rasa server and action server: replies come back in the person's language."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.domain import language_of_reply, responses

QUESTIONS = {
    "pt": "quero voltar para Moçambique, como faço?",
    "en": "i want to go back home how can u help me",
    "fr": "je veux rentrer chez moi, vous pouvez m'aider?",
    "sw": "nataka kurudi nyumbani mnaweza kunisaidia?",
}


def say(rasa_url: str, sender: str, text: str, metadata: dict | None = None) -> list[str]:
    body = {"sender": sender, "message": text}
    if metadata is not None:
        body["metadata"] = metadata
    reply = httpx.post(f"{rasa_url}/webhooks/rest/webhook", json=body, timeout=60)
    assert reply.status_code == 200
    return [m["text"] for m in reply.json() if "text" in m]


@pytest.mark.parametrize("language", ["pt", "en", "fr", "sw"])
def test_reply_is_in_the_language_the_gateway_sent(rasa_stack, language: str) -> None:
    texts = say(
        rasa_stack["rasa_url"],
        f"c{uuid.uuid4().hex[:31]}",
        QUESTIONS[language],
        {"language": language, "channel": "sms"},
    )
    assert texts, "the bot said nothing"
    assert texts[0] == responses()["utter_return_assistance"][language]


@pytest.mark.parametrize("language", ["pt", "en", "fr", "sw"])
def test_without_metadata_the_bot_detects_the_language(rasa_stack, language: str) -> None:
    texts = say(rasa_stack["rasa_url"], f"c{uuid.uuid4().hex[:31]}", QUESTIONS[language])
    assert texts and language in language_of_reply(texts[0])


def test_a_custom_action_runs_through_the_real_servers(rasa_stack) -> None:
    """ask_services is answered by action_list_services on the action server."""
    texts = say(
        rasa_stack["rasa_url"],
        f"c{uuid.uuid4().hex[:31]}",
        "where is the IOM office in Maputo?",
        {"language": "en", "channel": "whatsapp"},
    )
    assert texts[0].startswith(responses()["utter_services_intro"]["en"])
    assert "+258 21 310 779" in texts[0]


def test_the_language_carries_over_to_a_short_reply(rasa_stack) -> None:
    sender = f"c{uuid.uuid4().hex[:31]}"
    say(rasa_stack["rasa_url"], sender, QUESTIONS["sw"])
    texts = say(rasa_stack["rasa_url"], sender, "asante sana")
    assert texts and "sw" in language_of_reply(texts[0])


def test_an_edited_response_is_live_at_the_next_message_without_training(rasa_stack) -> None:
    """Rasa takes the words from the NLG endpoint, which reads bot/ as it is now."""
    path = rasa_stack["bot_dir"] / "general.yml"
    original = path.read_text(encoding="utf-8")
    old = responses()["utter_thanks"]["en"]
    new = "Thank you too. Write again whenever you need to. (edited by an editor)"
    assert old in original
    try:
        path.write_text(original.replace(old, new), encoding="utf-8")
        texts = say(
            rasa_stack["rasa_url"],
            f"c{uuid.uuid4().hex[:31]}",
            "thank you so much",
            {"language": "en", "channel": "sms"},
        )
        assert texts == [new]
    finally:
        path.write_text(original, encoding="utf-8")
