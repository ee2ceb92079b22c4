"""How a case reads in the console, and who may act on it: plain functions, no server."""

from __future__ import annotations

import pytest

from referral.accounts import Counsellor
from referral.console import casework, formatting, permissions
from referral.console.i18n import translator
from referral.queue import Case, Message

ANA = Counsellor("ana", "counsellor", "en", True)
BOB = Counsellor("bob", "counsellor", "en", True)
SARA = Counsellor("sara", "supervisor", "pt", True)


def case(**changes) -> Case:
    values = {
        "id": "R1",
        "conversation_id": "c1",
        "channel": "sms",
        "language": "pt",
        "priority": "high",
        "status": "claimed",
        "risk_level": "high",
        "indicators": [],
        "summary": "",
        "about_other": False,
        "consent": "given",
        "trigger": "",
        "opened_at": 0.0,
        "updated_at": 0.0,
        "claimed_by": "ana",
    }
    values.update(changes)
    return Case(**values)


def person(message_id: str, text: str, at: float = 1.0) -> Message:
    return Message(message_id, at, "person", "message", text, "person")


def test_evidence_is_marked_in_the_message_the_indicator_names() -> None:
    transcript = [
        person("1", "they took my passport"),
        person("2", "they took my   PASSPORT again"),
    ]
    lines = casework.transcript_lines(
        case(
            transcript=transcript,
            indicators=[
                {"name": "documents_confiscated", "message_index": 1, "phrase": "took my passport"}
            ],
        )
    )
    assert lines[0].evidence == []
    assert [(s.text, s.evidence) for s in lines[1].spans] == [
        ("they ", None),
        ("took my   PASSPORT", "documents_confiscated"),
        (" again", None),
    ]


def test_evidence_falls_back_to_the_first_message_with_the_words() -> None:
    lines = casework.transcript_lines(
        case(
            transcript=[person("1", "hello"), person("2", "I am not free to leave")],
            indicators=[
                {"name": "not_free_to_leave", "message_index": 0, "phrase": "not free to leave"},
                {"name": "ghost", "message_index": 7, "phrase": "never said"},
            ],
        )
    )
    assert lines[1].evidence == ["not_free_to_leave"]
    assert "".join(s.text for s in lines[1].spans) == "I am not free to leave"


def test_evidence_is_found_whatever_the_accents_and_capitals() -> None:
    lines = casework.transcript_lines(
        case(
            transcript=[person("1", "Socorro, NÃO POSSO sair daqui!")],
            indicators=[
                {"name": "not_free_to_leave", "message_index": 0, "phrase": "nao posso sair"}
            ],
        )
    )
    assert [(s.text, s.evidence) for s in lines[0].spans] == [
        ("Socorro, ", None),
        ("NÃO POSSO sair", "not_free_to_leave"),
        (" daqui!", None),
    ]


INDICATORS = [
    {"name": "documents_confiscated", "message_index": 0, "phrase": "took my passport"},
    {"name": "not_free_to_leave", "message_index": 0, "phrase": "not free to leave"},
    {"name": "documents_confiscated", "message_index": 1, "phrase": "passport"},
]


@pytest.mark.parametrize(
    ("language", "line"),
    [("en", "documents taken; not free to leave"), ("pt", "documentos retidos; não pode sair")],
)
def test_the_evidence_line_is_in_the_counsellors_language(language: str, line: str) -> None:
    # The summary is in the person's language (Swahili here); the counsellor reads their own.
    swahili = case(
        language="sw",
        indicators=INDICATORS,
        summary="hati zimechukuliwa; hawezi kuondoka",
        trigger="report_exploitation",
    )
    assert casework.evidence_line(swahili, translator(language)) == line


@pytest.mark.parametrize(
    ("trigger", "en", "pt"),
    [
        ("request_human", "asked for a counsellor", "pediu um conselheiro"),
        ("report_third_party", "reports another person at risk", "relata outra pessoa em risco"),
        (
            "a_new_intent",
            "a new intent",
            "a new intent",
        ),  # never a raw code, even before words exist
    ],
)
def test_without_signals_the_line_says_what_opened_the_case(trigger: str, en: str, pt: str) -> None:
    asked = case(trigger=trigger)
    assert casework.evidence_line(asked, translator("en")) == en
    assert casework.evidence_line(asked, translator("pt")) == pt


def test_an_emergency_says_so_next_to_its_signals() -> None:
    urgent = case(trigger="emergency", indicators=INDICATORS[1:2])
    assert casework.evidence_line(urgent, translator("en")) == "not free to leave; danger now"


def test_overlapping_evidence_keeps_every_character_once() -> None:
    lines = casework.transcript_lines(
        case(
            transcript=[person("1", "my boss took my passport")],
            indicators=[
                {"name": "a", "message_index": 0, "phrase": "boss took my"},
                {"name": "b", "message_index": 0, "phrase": "took my passport"},
            ],
        )
    )
    assert "".join(s.text for s in lines[0].spans) == "my boss took my passport"
    assert lines[0].evidence == ["a", "b"]


@pytest.mark.parametrize(
    ("priority", "level", "badge"),
    [
        ("emergency", "none", "emergency"),
        ("high", "elevated", "high"),
        ("request", "elevated", "elevated"),
        ("request", "none", "none"),
        ("high", "emergency", "emergency"),
    ],
)
def test_the_badge_is_the_risk_raised_to_the_priority(
    priority: str, level: str, badge: str
) -> None:
    assert casework.risk_badge(case(priority=priority, risk_level=level)) == badge


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "0 min"), (600, "10 min"), (3900, "1 h 05"), (90000, "1 d 1 h")]
)
def test_waited_text(seconds: float, text: str) -> None:
    assert formatting.waited(seconds) == text


def test_the_whatsapp_window() -> None:
    day = 24 * 3600
    recent = case(channel="whatsapp", transcript=[person("1", "hi", at=1000.0)])
    assert not casework.outside_whatsapp_window(recent, 1000.0 + day - 1)
    assert casework.outside_whatsapp_window(recent, 1000.0 + day + 1)
    assert not casework.outside_whatsapp_window(case(channel="sms", transcript=[]), 10 * day)


def test_only_the_holder_or_a_supervisor_works_a_case() -> None:
    held = case(claimed_by="ana")
    assert permissions.actions_for(ANA, held) == {"view", "reply", "note", "transfer", "close"}
    assert permissions.actions_for(BOB, held) == {"view"}
    assert permissions.actions_for(SARA, held) == {"view", "reply", "note", "transfer", "close"}
    waiting = case(status="waiting", claimed_by=None)
    assert permissions.actions_for(BOB, waiting) == {"view", "claim"}
    # A supervisor may note, move or close a waiting case, but replies only once someone holds it.
    assert "reply" not in permissions.actions_for(SARA, waiting)
    assert permissions.actions_for(SARA, case(status="closed")) == {"view"}
