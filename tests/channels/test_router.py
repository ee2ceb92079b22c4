"""The conversation router through the real Rasa and action servers: what a person is told
around the hand-off (language asked for in words, waiting, danger while waiting, the back word,
NO to DELETE), as the phone receives it through the sandbox."""

from __future__ import annotations

import pytest
import redis

from channels import keywords
from hotline import keys
from hotline.rasa import RasaClient
from hotline.settings import PROJECT_ROOT
from referral import rota
from referral.queue import Case, Referrals
from referral.texts import text
from tests.channels.conftest import Phone, Servers, run_sender, run_worker
from tests.domain import responses

NOTES = keywords.load(PROJECT_ROOT / "data" / "keywords.yml")


class Person:
    """A phone and what it has read so far, one exchange at a time."""

    def __init__(self, servers: Servers, settings, number: str) -> None:
        self.phone = Phone(servers, number, "sms")
        self.settings = settings
        self.read = 0

    def says(self, body: str) -> list[str]:
        """Send one message, let the worker and sender run, return the texts that came back."""
        assert self.phone.send(body).status_code == 200
        run_worker(self.settings, RasaClient(self.settings), timeout=120)
        run_sender(self.settings)
        bodies = self.phone.received()
        new, self.read = bodies[self.read :], len(bodies)
        return [part for body in new for part in body.split("\n\n")]


def the_case(db: redis.Redis) -> Case:
    referrals = Referrals(db)
    cases = referrals.list_open() or referrals.list_closed()
    assert len(cases) == 1, cases
    return referrals.get(cases[0].id)


LANGUAGE_REQUESTS = [
    ("pt", "en", "now I want to write in English please"),
    ("pt", "fr", "je préfère parler en français"),
    ("en", "sw", "nataka kuongea Kiswahili"),
    ("sw", "pt", "quero falar em portugues por favor"),
]


@pytest.mark.parametrize(("first", "asked", "asking"), LANGUAGE_REQUESTS)
def test_a_language_asked_for_in_words_is_switched_to_and_opens_no_case(
    first: str, asked: str, asking: str, servers: Servers, e2e_settings, db: redis.Redis
) -> None:
    person = Person(servers, e2e_settings, "+258840000101")
    person.says(first.upper())  # the language pick keyword: PT, EN, SW

    assert person.says(asking) == [NOTES.note("language_set", asked)]
    assert Referrals(db).count("open") == 0
    # The next question is answered in the language asked for.
    reply = person.says("hello")
    assert reply and all(t in responses_in(asked) for t in reply), reply


def responses_in(language: str) -> set[str]:
    return {variants[language] for variants in responses().values() if language in variants}


def test_a_person_waiting_is_told_once_then_again_after_the_interval(
    servers: Servers, e2e_settings, db: redis.Redis
) -> None:
    rota.heartbeat(db, "ana")  # a counsellor has the console open
    person = Person(servers, e2e_settings, "+258840000102")
    person.says("quero falar com uma pessoa")
    case = the_case(db)
    assert case.status == "waiting"

    waiting = text("utter_waiting_ack", "pt")
    assert person.says("ainda ninguem me respondeu") == [waiting]
    assert person.says("estou a espera") == []  # told a moment ago: no note for each message
    # The counsellor sees what the person wrote and what they were told.
    lines = [(m.author, m.text) for m in the_case(db).transcript]
    assert ("person", "estou a espera") in lines and ("system", waiting) in lines

    db.delete(keys.waiting_ack(case.conversation_id))  # the interval has passed
    assert person.says("ola?") == [waiting]


def test_danger_while_waiting_raises_the_case_and_sends_the_numbers_at_once(
    servers: Servers, e2e_settings, db: redis.Redis
) -> None:
    rota.heartbeat(db, "ana")
    person = Person(servers, e2e_settings, "+258840000103")
    person.says("EN")
    person.says("I want to talk to a person")
    assert the_case(db).priority == "request"

    reply = person.says("help they are beating me now, I am locked in the room")

    assert reply == [text("utter_emergency", "en"), text("utter_emergency_alerting", "en")]
    case = the_case(db)
    assert case.priority == "emergency" and case.risk_level == "emergency"
    assert Referrals(db).list_waiting()[0].id == case.id  # first in the queue
    # The consoles alert on this change (referral/console/static/console.js isEmergency).
    changes = [f for _, f in db.xrange(keys.CHANGES_STREAM)]
    assert {"case": case.id, "action": "retriggered", "priority": "emergency"} in changes


def test_the_back_word_withdraws_a_plain_request_and_the_bot_answers_again(
    servers: Servers, e2e_settings, db: redis.Redis
) -> None:
    person = Person(servers, e2e_settings, "+258840000104")
    person.says("quero falar com uma pessoa")
    # "Voltar" answers a counsellor's "do you want to go home?": it is relayed, never a keyword.
    person.says("voltar")
    assert the_case(db).status == "waiting"

    assert person.says("MENU") == [text("utter_back_to_bot_cancelled", "pt")]
    case = the_case(db)
    assert case.status == "closed" and case.outcome == "declined" and case.closed_by == "person"
    reply = person.says("quero voltar para Moçambique, como faço?")
    assert reply[0] == responses()["utter_return_assistance"]["pt"]


def test_the_back_word_on_a_case_at_risk_keeps_it_open_while_the_bot_answers(
    servers: Servers, e2e_settings, db: redis.Redis
) -> None:
    person = Person(servers, e2e_settings, "+258840000105")
    person.says("EN")
    person.says("my boss took my passport and he does not let me leave the farm")
    person.says("yes")
    case = the_case(db)
    assert case.priority == "high" and case.status == "waiting"

    assert person.says("menu") == [text("utter_back_to_bot_kept", "en")]
    reply = person.says("how can I go back home to Mozambique?")
    assert reply[0] == responses()["utter_return_assistance"]["en"]
    case = the_case(db)
    assert case.status == "waiting"  # whoever holds the phone cannot close it with one word
    lines = [(m.author, m.text) for m in case.transcript]
    assert ("bot", responses()["utter_return_assistance"]["en"]) in lines

    # A counsellor's reply brings the person back to the case: the bot stays silent again.
    referrals = Referrals(db)
    referrals.claim(case.id, "ana")
    referrals.reply(case.id, "ana", "Hello, I am Ana, a counsellor. Are you safe now?")
    run_sender(e2e_settings)
    person.read += 1
    assert person.says("yes I am safe for now") == []
    assert ("person", "yes I am safe for now") in [
        (m.author, m.text) for m in the_case(db).transcript
    ]


def test_no_to_delete_only_cancels(servers: Servers, e2e_settings, db: redis.Redis) -> None:
    person = Person(servers, e2e_settings, "+258840000106")
    person.says("EN")
    assert person.says("DELETE") == [NOTES.note("delete_confirm", "en")]
    assert person.says("no") == [NOTES.note("delete_cancelled", "en")]
