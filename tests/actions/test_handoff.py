"""The handoff actions, run from tracker snapshots against a real Redis queue."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import (
    ActionDeclineCounsellor,
    ActionOfferCounsellor,
    ActionOpenCase,
)
from referral import rota
from referral.queue import Referrals
from tests.actions.snapshots import action, tracker, user
from tests.domain import responses

CID = "c0123456789abcdef0123456789abcd"  # the sender id snapshots.tracker uses
MAPUTO = ZoneInfo("Africa/Maputo")
DAYTIME = datetime(2024, 5, 6, 10, 0, tzinfo=MAPUTO).timestamp()  # a Monday, within the rota
NIGHT = datetime(2024, 5, 6, 23, 0, tzinfo=MAPUTO).timestamp()


def said(messages: list[dict], language: str) -> list[str]:
    """What the person reads."""
    return [message["text"] for message in messages]


def response_name(text: str, language: str) -> str:
    """Which response of data/handoff.yml a text is, in that language ({next_shift} filled in,
    a service list after the intro line)."""
    for name, variants in responses().items():
        pattern = re.escape(variants.get(language, "\0")).replace(re.escape("{next_shift}"), ".+")
        if re.fullmatch(pattern, text) or re.fullmatch(pattern + r"\n.+", text, re.DOTALL):
            return name
    raise AssertionError(f"not a {language} response: {text!r}")


def run(
    action, events: list[dict], slots: dict | None = None
) -> tuple[list[str], list[dict], list[dict]]:
    dispatcher = CollectingDispatcher()
    slots = slots or {"language": "pt"}
    result = asyncio.run(action.run(dispatcher, tracker(events, slots), {}))
    names = [response_name(m["text"], slots.get("language") or "pt") for m in dispatcher.messages]
    return names, result, dispatcher.messages


def open_case(
    db: redis.Redis,
    events: list[dict],
    language: str = "pt",
    now: float = DAYTIME,
    present: bool = True,
):
    if present:
        rota.heartbeat(db, "ana", now=now)
    names, result, messages = run(
        ActionOpenCase(db=db, clock=lambda: now), events, {"language": language}
    )
    return names, result, said(messages, language)


def the_case(db: redis.Redis):
    referrals = Referrals(db)
    case_id = referrals.open_case_id(CID)
    assert case_id, "no case was opened"
    return referrals.get(case_id)


def test_an_emergency_hands_off_at_once_with_the_numbers_in_the_same_reply(db: redis.Redis) -> None:
    names, result, text = open_case(
        db, [user("help they are beating me now", "emergency", 0.97)], "en"
    )
    # No question asked; a counsellor is on duty, so the person is told one is alerted.
    assert names == ["utter_emergency", "utter_emergency_alerting"]
    assert "119" in text[0]
    # The bot is not paused: the open case alone hands the conversation to the counsellor.
    assert not [e for e in result if e.get("event") == "pause"]
    case = the_case(db)
    assert (
        case.priority == "emergency"
        and case.consent == "not_asked"
        and case.risk_level == "emergency"
    )
    assert case.summary == "threats or violence; danger now"


def test_an_emergency_the_lexicon_finds_is_handed_off_whatever_the_intent(db: redis.Redis) -> None:
    open_case(db, [user("estao a bater-me agora", "ask_documents", 0.4)])
    assert the_case(db).priority == "emergency"


def test_consent_given_opens_a_high_case_with_the_evidence(db: redis.Redis) -> None:
    events = [
        {**user("Olá", "greet"), "timestamp": 100.0},
        {"event": "bot", "text": "Olá! Em que posso ajudar?", "timestamp": 101.0},
        {**user("o patrão guardou o meu passaporte", "ask_documents", 0.6), "timestamp": 102.0},
        {**user("e não me deixa sair da fazenda", "report_exploitation"), "timestamp": 103.0},
        action("action_offer_counsellor"),
        {
            **user("sim", "affirm", metadata={"channel": "whatsapp", "language": "pt"}),
            "timestamp": 104.0,
        },
    ]
    names, _, _ = open_case(db, events)
    assert names == ["utter_case_opened"]
    case = the_case(db)
    assert case.priority == "high" and case.consent == "given" and case.channel == "whatsapp"
    assert [i["name"] for i in case.indicators] == ["documents_confiscated", "not_free_to_leave"]
    assert case.summary == "documentos retidos; não pode sair"
    assert [(m.author, m.text) for m in case.transcript] == [
        ("person", "Olá"),
        ("bot", "Olá! Em que posso ajudar?"),
        ("person", "o patrão guardou o meu passaporte"),
        ("person", "e não me deixa sair da fazenda"),
        ("person", "sim"),
    ]


def test_nobody_on_duty_says_when_someone_will_answer_and_gives_numbers_at_high_risk(
    db: redis.Redis,
) -> None:
    events = [
        user("não me deixam sair da casa", "report_exploitation"),
        action("action_offer_counsellor"),
        user("sim", "affirm"),
    ]
    names, result, text = open_case(db, events, now=NIGHT, present=False)
    assert names == ["utter_case_opened", "utter_nobody_on_duty_urgent"]
    assert "pode responder a partir de amanha às 06:00." in text[1] and "119" in text[1]
    assert {
        "event": "slot",
        "timestamp": None,
        "name": "next_shift",
        "value": "a partir de amanha às 06:00",
    } in result
    assert the_case(db).status == "waiting"  # it waits for the morning shift, first in line


def test_nobody_present_in_the_day_is_on_duty_by_the_rota(db: redis.Redis) -> None:
    names, _, _ = open_case(
        db, [user("quero falar com uma pessoa", "request_human")], present=False
    )
    assert names == ["utter_case_opened"]


def test_a_counsellor_present_at_night_is_on_duty(db: redis.Redis) -> None:
    names, _, _ = open_case(db, [user("ils vont me tuer", "emergency")], "fr", now=NIGHT)
    assert names == ["utter_emergency", "utter_emergency_alerting"]


def test_an_emergency_at_night_gets_the_numbers_once_and_the_time(db: redis.Redis) -> None:
    names, _, text = open_case(
        db, [user("ils vont me tuer", "emergency")], "fr", now=NIGHT, present=False
    )
    # Never "we are alerting a counsellor now" when nobody is there to alert.
    assert names == ["utter_emergency", "utter_nobody_on_duty"]
    assert "119" in text[0] and "pourra vous répondre dès demain à 06:00." in text[1]


def test_a_child_alone_gets_child_protection_wording_and_a_high_case(db: redis.Redis) -> None:
    names, _, text = open_case(db, [user("nina miaka 14 na niko peke yangu", "child_alone")], "sw")
    assert names == ["utter_child_protection"]
    assert "116" in text[0]
    case = the_case(db)
    assert case.priority == "high" and case.consent == "not_asked" and case.language == "sw"


def test_asking_for_a_person_opens_a_normal_case(db: redis.Redis) -> None:
    names, _, _ = open_case(db, [user("can I talk to a person", "request_human")], "en")
    assert names == ["utter_case_opened"]
    case = the_case(db)
    assert case.priority == "request" and case.consent == "requested" and case.risk_level == "none"


def test_a_second_trigger_raises_the_open_case_instead_of_opening_another(db: redis.Redis) -> None:
    open_case(db, [user("quero falar com alguem", "request_human")])
    open_case(
        db,
        [
            user("quero falar com alguem", "request_human"),
            user("socorro estao a bater-me", "emergency"),
        ],
    )
    referrals = Referrals(db)
    assert len(referrals.cases_of(CID)) == 1
    assert the_case(db).priority == "emergency"


def test_without_redis_the_person_still_gets_the_emergency_numbers(settings_factory) -> None:
    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    names, result, _ = run(
        ActionOpenCase(db=dead, clock=lambda: DAYTIME),
        [user("help they are beating me", "emergency")],
        {"language": "en"},
    )
    assert names == ["utter_emergency"]
    assert all(event["event"] != "pause" for event in result)  # the bot keeps answering


@pytest.mark.parametrize(
    ("events", "acknowledgement"),
    [
        (
            [user("my boss keeps my passport and beats me", "report_exploitation")],
            "utter_acknowledge_disclosure",
        ),
        (
            [user("minha irmã está presa numa casa, não a deixam sair", "report_third_party")],
            "utter_acknowledge_third_party",
        ),
        # Risk that built up over turns, about someone else, with an ordinary last intent.
        (
            [
                user("my friend works on a farm", "out_of_scope", 0.4),
                user("they took her phone and she cant call her family", "out_of_scope", 0.4),
                user("she works 16 hours a day with no day off", "ask_legal_help", 0.5),
            ],
            "utter_acknowledge_third_party",
        ),
    ],
)
def test_the_offer_acknowledges_gives_one_safety_sentence_and_asks_consent(
    events: list[dict], acknowledgement: str
) -> None:
    names, result, _ = run(ActionOfferCounsellor(), events)
    assert names == [acknowledgement, "utter_safety_tip", "utter_ask_consent"]
    assert result == []  # nothing is opened before the person agrees


def test_a_refusal_is_respected_and_the_matching_services_are_given(db: redis.Redis) -> None:
    events = [
        user("tenho 15 anos e o patrão bate-me", "report_exploitation"),
        action("action_offer_counsellor"),
        user("não", "deny"),
    ]
    names, result, messages = run(ActionDeclineCounsellor(), events)
    assert names == ["utter_consent_declined", "utter_services_intro"]
    listing = messages[-1]["text"]
    assert "116" in listing and "119" in listing  # child helpline and police
    assert "PESSOA" in said(messages[:1], "pt")[0]  # how to ask for a person later
    assert result == []
    assert Referrals(db).open_case_id(CID) is None


def test_a_danger_reading_the_screen_does_not_confirm_still_gets_the_numbers(
    db: redis.Redis,
) -> None:
    """A faint emergency reading opens no emergency case, but the person is never left with only
    "a counsellor will write": the emergency numbers are in the same reply."""
    names, _, _ = open_case(db, [user("please just tell me", "emergency", 0.2)], "en")
    assert the_case(db).priority == "request"
    assert "utter_danger_numbers" in names
    offered, _, _ = run(
        ActionOfferCounsellor(), [user("please just tell me", "emergency", 0.2)], {"language": "fr"}
    )
    assert offered.index("utter_danger_numbers") < offered.index("utter_ask_consent")


def test_a_confident_danger_reading_is_an_emergency_case(db: redis.Redis) -> None:
    """The screen prefers a false alarm to a miss: a sure reading of danger now is an emergency
    even in words no lexicon phrase holds; the emergency reply carries the numbers itself."""
    names, _, _ = open_case(db, [user("he found me again, pls quick", "emergency", 0.97)], "en")
    assert the_case(db).priority == "emergency"
    assert names[0] == "utter_emergency" and "utter_danger_numbers" not in names
