"""Through the real Rasa and action servers: a signed webhook in each language comes back
through the sandbox, in that language, exactly once."""

from __future__ import annotations

import pytest

from channels import keywords
from hotline.rasa import RasaClient
from hotline.settings import PROJECT_ROOT
from tests.channels.conftest import Phone, Servers, run_sender, run_worker
from tests.domain import language_of_reply, responses

QUESTIONS = {
    "pt": "quero voltar para Moçambique, como faço?",
    "en": "i want to go back home how can u help me",
    "fr": "je veux rentrer chez moi, vous pouvez m'aider?",
    "sw": "nataka kurudi nyumbani mnaweza kunisaidia?",
}
NUMBERS = {
    "pt": "+258840000011",
    "en": "+258840000012",
    "fr": "+258840000013",
    "sw": "+258840000014",
}


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
@pytest.mark.parametrize("language", ["pt", "en", "fr", "sw"])
def test_a_question_is_answered_once_in_its_language(
    language: str, channel: str, servers: Servers, e2e_settings
) -> None:
    phone = Phone(servers, NUMBERS[language], channel)
    assert phone.send(QUESTIONS[language]).status_code == 200

    run_worker(e2e_settings, RasaClient(e2e_settings), timeout=120)
    run_sender(e2e_settings)

    bodies = phone.received()
    parts = [part for body in bodies for part in body.split("\n\n")]
    expected = responses()["utter_return_assistance"][language]
    assert parts[0] == expected, bodies
    assert sum(body.count(expected) for body in bodies) == 1, "answered more than once"
    assert language in language_of_reply(parts[0])


def test_a_language_pick_then_a_short_message(servers: Servers, e2e_settings) -> None:
    """ "kiswahili" is the channel's own keyword; the next message goes to Rasa in Swahili."""
    notes = keywords.load(PROJECT_ROOT / "data" / "keywords.yml")
    phone = Phone(servers, "+258840000015", "sms")
    assert phone.send("kiswahili").status_code == 200
    run_worker(e2e_settings, RasaClient(e2e_settings), timeout=120)
    run_sender(e2e_settings)
    assert phone.received() == [notes.note("language_set", "sw")]

    assert phone.send("habari").status_code == 200
    run_worker(e2e_settings, RasaClient(e2e_settings), timeout=120)
    run_sender(e2e_settings)
    replies = phone.received()[1:]
    assert len(replies) == 1 and "sw" in language_of_reply(replies[0].split("\n\n")[0])
