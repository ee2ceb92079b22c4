"""action_list_services reads the directory and answers in the person's language."""

from __future__ import annotations

import asyncio

from rasa_sdk.executor import CollectingDispatcher

from actions.services import ActionListServices, services_reply
from hotline.sms import encoding, segment_count
from protection import directory
from tests.actions.snapshots import tracker, user
from tests.domain import responses


def run(text: str, language: str) -> list[dict]:
    dispatcher = CollectingDispatcher()
    asyncio.run(
        ActionListServices().run(
            dispatcher, tracker([user(text, "ask_services")], {"language": language}), {}
        )
    )
    return dispatcher.messages


def test_every_service_in_the_directory_is_complete() -> None:
    for service in directory.load():
        assert service.type in directory.SERVICE_TYPES
        assert set(service.name) >= {"pt", "en", "fr", "sw"}
        assert service.phone or service.short_code


def test_the_list_is_introduced_and_in_the_persons_language() -> None:
    [message] = run("where is the IOM office in Maputo?", "en")
    assert message["text"].startswith(responses()["utter_services_intro"]["en"])
    assert "+258 21 310 779" in message["text"]
    english = next(s for s in directory.load() if s.id == "iom-maputo").name["en"]
    assert english in message["text"]


def test_asking_for_the_police_gives_the_police_number() -> None:
    reply = services_reply("qual é o numero da policia?", "pt")
    assert reply is not None and "119" in reply and "1458" not in reply


def test_asking_for_a_kind_of_service_we_do_not_list_says_so() -> None:
    [message] = run("preciso de um abrigo em Nampula", "pt")
    assert message["text"] == responses()["utter_no_services"]["pt"]


def test_the_full_list_fits_in_three_segments() -> None:
    for language in ("pt", "en", "fr", "sw"):
        reply = services_reply("onde encontro ajuda?", language)
        assert reply is not None and segment_count(reply) <= 3, (language, reply)


def test_a_word_inside_another_is_not_a_kind_of_service() -> None:
    # "ilegal" is not a question about legal aid: the general lines answer it.
    found = directory.match(directory.load(), "estou ilegal, onde ha ajuda?")
    assert found and all(s.type != "legal_aid" for s in found)


def test_a_province_without_the_service_gets_the_nearest_one() -> None:
    found = directory.match(directory.load(), "onde fica o escritorio da OIM em Nampula?")
    assert [s.id for s in found] == ["iom-maputo"]


def test_the_office_line_gives_its_street_address_in_the_sms_alphabet() -> None:
    line = directory.format_services(directory.match(directory.load(), "escritorio oim"), "pt")
    assert "Rua Joao Carlos Raposo Beirao 327" in line
    assert encoding(line) == "GSM-7"
