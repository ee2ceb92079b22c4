"""The console's JSON API against the real Redis: every action, and who may take it."""

from __future__ import annotations

import logging

import pytest
import redis

from hotline.conversations import OUTBOUND_STREAM
from referral import rota
from referral.queue import Referrals
from tests.console.conftest import DISCLOSURE, NUMBER


def test_anonymous_api_calls_get_401(anonymous, open_case) -> None:
    case_id = open_case()
    for method, url in [
        ("get", "/api/queue"),
        ("get", f"/api/cases/{case_id}"),
        ("post", f"/api/cases/{case_id}/claim"),
        ("get", "/api/services"),
        ("get", "/api/docs"),
        ("get", "/api/openapi.json"),
    ]:
        response = getattr(anonymous, method)(url)
        assert response.status_code == 401, url
        assert response.json() == {"detail": "sign in first"}


def test_the_queue_lists_waiting_cases_by_priority_then_waiting_time(
    sign_in, open_case, db
) -> None:
    high = open_case("high")
    request = open_case("request")
    emergency = open_case("emergency")
    ana = sign_in("ana")

    waiting = ana.get("/api/queue").json()

    assert [c["id"] for c in waiting] == [emergency, high, request]
    first = waiting[0]
    assert first["badge"] == "emergency"
    assert first["evidence"] == "documents taken; not free to leave"  # in ana's language
    assert (first["language"], first["channel"], first["status"]) == ("en", "whatsapp", "waiting")
    assert first["waiting_seconds"] >= 0


def test_mine_and_open_tabs(sign_in, open_case) -> None:
    mine, other, waiting = open_case(), open_case(), open_case()
    ana, bob = sign_in("ana"), sign_in("bob")
    ana.post(f"/api/cases/{mine}/claim")
    bob.post(f"/api/cases/{other}/claim")

    assert [c["id"] for c in ana.get("/api/queue?tab=mine").json()] == [mine]
    assert {c["id"] for c in ana.get("/api/queue?tab=open").json()} == {mine, other, waiting}
    assert [c["id"] for c in ana.get("/api/queue").json()] == [waiting]


def test_a_case_has_its_transcript_evidence_and_only_a_masked_number(sign_in, open_case) -> None:
    case_id = open_case()
    ana = sign_in("ana")

    response = ana.get(f"/api/cases/{case_id}")

    assert response.status_code == 200
    case = response.json()
    assert [line["author"] for line in case["transcript"]] == ["person", "bot", "person", "bot"]
    disclosure = case["transcript"][2]
    assert disclosure["text"] == DISCLOSURE
    assert disclosure["evidence"] == ["documents_confiscated", "not_free_to_leave"]
    marked = [span["text"] for span in disclosure["spans"] if span["evidence"]]
    assert marked == ["took my passport", "not free to leave"]
    assert case["masked_address"] == "whatsapp:+258 ••• ••67"
    assert NUMBER not in response.text and NUMBER[1:] not in response.text
    assert case["consent"] == "given"
    assert case["allowed_actions"] == ["claim", "view"]


def test_unknown_case_is_404_for_every_action(sign_in) -> None:
    ana = sign_in("ana")
    assert ana.get("/api/cases/R999").status_code == 404
    for action, body in [
        ("claim", None),
        ("reply", {"text": "hi"}),
        ("note", {"text": "hi"}),
        ("transfer", {"to": None}),
        ("close", {"outcome": "declined"}),
    ]:
        response = ana.post(f"/api/cases/R999/{action}", json=body)
        assert response.status_code == 404, action
        assert response.json()["error"] == "not_found"
        assert response.json()["case_id"] == "R999"


def test_claim_race_the_second_claimer_learns_who_has_it(sign_in, open_case) -> None:
    case_id = open_case()
    ana, bob = sign_in("ana"), sign_in("bob")

    first = ana.post(f"/api/cases/{case_id}/claim")
    second = bob.post(f"/api/cases/{case_id}/claim")

    assert first.status_code == 200
    assert first.json()["claimed_by"] == "ana"
    assert second.status_code == 409
    assert second.json()["error"] == "already_claimed"
    assert second.json()["claimed_by"] == "ana"
    assert "ana" in second.json()["detail"]
    # Claiming again what one already holds is harmless.
    assert ana.post(f"/api/cases/{case_id}/claim").status_code == 200


def test_a_state_change_without_the_csrf_token_is_refused(sign_in, open_case) -> None:
    case_id = open_case()
    ana = sign_in("ana")
    response = ana.client.post(f"/api/cases/{case_id}/claim")
    assert response.status_code == 403
    assert Referrals  # the case stays waiting
    assert ana.get(f"/api/cases/{case_id}").json()["status"] == "waiting"


def test_reply_reaches_the_outbound_stream_with_its_segment_count(
    sign_in, open_case, db: redis.Redis
) -> None:
    case_id = open_case(channel="sms")
    ana = sign_in("ana")
    ana.post(f"/api/cases/{case_id}/claim")

    response = ana.post(
        f"/api/cases/{case_id}/reply", json={"text": "Olá, estou aqui para ajudar."}
    )

    assert response.status_code == 200
    assert response.json()["segments"] == 1
    assert response.json()["channel"] == "sms"
    sent = [fields for _, fields in db.xrange(OUTBOUND_STREAM)]
    assert sent[-1]["text"] == "Olá, estou aqui para ajudar."
    assert sent[-1]["source"] == "counsellor"
    transcript = ana.get(f"/api/cases/{case_id}").json()["transcript"]
    assert (transcript[-1]["author"], transcript[-1]["actor"]) == ("counsellor", "ana")


def test_reply_needs_the_case_claimed_by_the_one_who_replies(
    sign_in, open_case, db: redis.Redis
) -> None:
    case_id = open_case()
    ana, bob = sign_in("ana"), sign_in("bob")

    unclaimed = ana.post(f"/api/cases/{case_id}/reply", json={"text": "hello"})
    assert unclaimed.status_code == 403
    assert unclaimed.json()["error"] == "not_your_case"

    ana.post(f"/api/cases/{case_id}/claim")
    refused = bob.post(f"/api/cases/{case_id}/reply", json={"text": "hello"})
    assert refused.status_code == 403
    assert refused.json()["claimed_by"] == "ana"
    assert db.xlen(OUTBOUND_STREAM) == 0


def test_an_empty_reply_is_refused(sign_in, open_case) -> None:
    case_id = open_case()
    ana = sign_in("ana")
    ana.post(f"/api/cases/{case_id}/claim")
    assert ana.post(f"/api/cases/{case_id}/reply", json={"text": "   "}).status_code == 422
    assert ana.post(f"/api/cases/{case_id}/reply", json={"text": ""}).status_code == 422


def test_notes_are_internal_and_only_for_the_holder(sign_in, open_case, db: redis.Redis) -> None:
    case_id = open_case()
    ana, bob = sign_in("ana"), sign_in("bob")
    ana.post(f"/api/cases/{case_id}/claim")

    assert (
        ana.post(f"/api/cases/{case_id}/note", json={"text": "called the shelter"}).status_code
        == 200
    )
    assert bob.post(f"/api/cases/{case_id}/note", json={"text": "me too"}).status_code == 403

    lines = ana.get(f"/api/cases/{case_id}").json()["transcript"]
    assert [(line["kind"], line["text"]) for line in lines if line["kind"] == "note"] == [
        ("note", "called the shelter")
    ]
    assert db.xlen(OUTBOUND_STREAM) == 0  # a note never reaches the person


def test_transfer_to_a_colleague_and_back_to_the_queue(sign_in, open_case) -> None:
    case_id = open_case()
    ana, bob = sign_in("ana"), sign_in("bob")
    ana.post(f"/api/cases/{case_id}/claim")

    assert bob.post(f"/api/cases/{case_id}/transfer", json={"to": "bob"}).status_code == 403
    unknown = ana.post(f"/api/cases/{case_id}/transfer", json={"to": "nobody"})
    assert unknown.status_code == 422

    moved = ana.post(f"/api/cases/{case_id}/transfer", json={"to": "bob"})
    assert moved.status_code == 200
    assert moved.json()["claimed_by"] == "bob"
    assert [c["id"] for c in bob.get("/api/queue?tab=mine").json()] == [case_id]

    back = bob.post(f"/api/cases/{case_id}/transfer", json={"to": None})
    assert back.json()["status"] == "waiting"
    assert [c["id"] for c in ana.get("/api/queue").json()] == [case_id]


def test_close_is_recorded_and_hands_back_while_rasa_is_down(
    sign_in, open_case, db: redis.Redis
) -> None:
    case_id = open_case()
    ana = sign_in("ana")
    ana.post(f"/api/cases/{case_id}/claim")

    response = ana.post(
        f"/api/cases/{case_id}/close",
        json={"outcome": "referred_shelter", "note": "bed at the shelter tonight"},
    )

    assert response.status_code == 200
    assert response.json()["case"]["status"] == "closed"
    assert response.json()["case"]["outcome"] == "referred_shelter"
    # Rasa is down in these tests: the hand-back is the close, and needs none of it.
    assert response.json()["bot_resumed"] is True
    assert Referrals(db).open_case_id(Referrals(db).get(case_id).conversation_id) is None
    case = Referrals(db).get(case_id)
    assert case.closed_by == "ana"
    # The closing note, then the closing line the person is sent, with its status.
    assert [(m.kind, m.author) for m in case.transcript[-2:]] == [
        ("note", "counsellor"),
        ("message", "system"),
    ]
    assert case.transcript[-1].delivery is not None
    assert [(e.actor, e.action) for e in Referrals(db).audit(case_id)][-2:] == [
        ("ana", "closed"),
        ("system", "sent"),
    ]
    # Closed means closed: a second close, or a claim, is a conflict.
    again = ana.post(f"/api/cases/{case_id}/close", json={"outcome": "declined"})
    assert again.status_code == 409
    assert again.json()["error"] == "closed"
    assert ana.post(f"/api/cases/{case_id}/claim").status_code == 409


def test_a_counsellor_cannot_close_another_counsellors_case(
    sign_in, open_case, db: redis.Redis
) -> None:
    case_id = open_case()
    ana, bob = sign_in("ana"), sign_in("bob")
    ana.post(f"/api/cases/{case_id}/claim")

    response = bob.post(f"/api/cases/{case_id}/close", json={"outcome": "declined"})

    assert response.status_code == 403
    assert response.json() == {
        "detail": f"case {case_id} is claimed by ana",
        "case_id": case_id,
        "error": "not_your_case",
        "claimed_by": "ana",
    }
    assert Referrals(db).get(case_id, transcript=False).status == "claimed"


def test_close_needs_a_known_outcome(sign_in, open_case) -> None:
    case_id = open_case()
    ana = sign_in("ana")
    ana.post(f"/api/cases/{case_id}/claim")
    assert ana.post(f"/api/cases/{case_id}/close", json={"outcome": "solved"}).status_code == 422


def test_a_supervisor_may_act_on_any_case(sign_in, open_case, db: redis.Redis) -> None:
    case_id = open_case()
    ana, sara = sign_in("ana"), sign_in("sara", role="supervisor")
    ana.post(f"/api/cases/{case_id}/claim")

    assert (
        sara.post(f"/api/cases/{case_id}/reply", json={"text": "I am a supervisor"}).status_code
        == 200
    )
    assert sara.post(f"/api/cases/{case_id}/note", json={"text": "checked"}).status_code == 200
    assert (
        sara.post(f"/api/cases/{case_id}/close", json={"outcome": "not_a_case"}).status_code == 200
    )
    assert Referrals(db).get(case_id, transcript=False).closed_by == "sara"


def test_services_by_province_and_type(sign_in) -> None:
    ana = sign_in("ana")

    police = ana.get("/api/services?type=police&language=en").json()
    assert police and {s["type"] for s in police} == {"police"}
    assert police[0]["insert_text"].startswith("Police (Mozambique): 119")

    maputo = ana.get("/api/services?province=Maputo Cidade&language=pt").json()
    assert {s["province"] for s in maputo} <= {"Maputo Cidade", "national"}
    assert maputo[0]["province"] == "Maputo Cidade"  # local first, then national


def test_canned_replies_in_the_persons_language(sign_in) -> None:
    ana = sign_in("ana", language="en")
    replies = ana.get("/api/canned-replies?language=pt").json()
    greeting = next(r for r in replies if r["id"] == "greeting")
    assert greeting["title"] == "Introduce yourself"
    assert greeting["text"].startswith("Ola, sou conselheiro(a)")  # GSM-7 text: no accents


def test_heartbeat_puts_the_counsellor_on_duty(sign_in, db: redis.Redis) -> None:
    ana = sign_in("ana")
    assert ana.post("/api/heartbeat").status_code == 204
    assert rota.present(db) == ["ana"]


def test_api_docs_behind_the_login(sign_in) -> None:
    ana = sign_in("ana")
    schema = ana.get("/api/openapi.json").json()
    assert "/api/cases/{case_id}/claim" in schema["paths"]
    assert not any(path.startswith("/cases") for path in schema["paths"])  # pages stay out
    docs = ana.get("/api/docs")
    assert docs.status_code == 200
    assert "/api/cases/{case_id}/close" in docs.text
    assert "<script" not in docs.text.split("</main>")[0]


def test_no_message_text_or_number_reaches_the_logs(sign_in, open_case, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    case_id = open_case()
    ana = sign_in("ana")
    ana.post(f"/api/cases/{case_id}/claim")
    ana.post(f"/api/cases/{case_id}/reply", json={"text": "secret words for the person"})
    ana.post(f"/api/cases/{case_id}/note", json={"text": "private note words"})
    ana.get(f"/cases/{case_id}")
    ana.post(f"/api/cases/{case_id}/close", json={"outcome": "declined", "note": "closing words"})

    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in ("secret words", "private note", "closing words", DISCLOSURE, NUMBER, NUMBER[4:]):
        assert secret not in logged


@pytest.mark.parametrize("tab", ["waiting", "mine", "open"])
def test_queue_tabs_answer(sign_in, tab: str) -> None:
    assert sign_in("ana").get(f"/api/queue?tab={tab}").status_code == 200
