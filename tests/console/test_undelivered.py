"""The supervisor's page of undelivered replies and dead letters: each with its reason in the
supervisor's words, never a number or a text, and what can be sent again sent again."""

from __future__ import annotations

import re

import redis

from channels import delivery
from hotline import conversations, keys
from hotline.conversations import DEAD_LETTER_STREAM, OUTBOUND_STREAM
from referral.queue import Referrals
from tests.console.conftest import DISCLOSURE, NUMBER

REPLY = "Ola, sou a Ana. Esta em seguranca?"


def _failed(
    db: redis.Redis, case_id: str, ref: str, sid: str, code: str, status: str = "undelivered"
) -> None:
    """What the sender and Twilio's callback leave for a case line that did not arrive."""
    cid = db.hget(keys.case(case_id), "conversation_id") or ""
    delivery.record(
        db,
        sid,
        conversation_id=cid,
        channel="whatsapp",
        source="counsellor",
        status=status,
        error_code=code,
        entry=f"{sid}-0",
        attempt="1-0",
        case_id=case_id,
    )
    delivery.link(db, sid, {case_id: [ref]})


def _seed(db: redis.Redis, open_case) -> dict[str, str]:
    referrals = Referrals(db)
    off, stopped = open_case(), open_case()
    for case_id in (off, stopped):
        referrals.claim(case_id, "ana")
    refs = {}
    for case_id, text in ((off, REPLY), (stopped, "Ola")):
        line = referrals.reply(case_id, "ana", text)
        refs[case_id] = next(m.ref for m in referrals.transcript(case_id) if m.id == line)
    off_ref, stopped_ref = refs[off], refs[stopped]
    db.delete(OUTBOUND_STREAM)  # the sender took them
    _failed(db, off, off_ref, "SM" + "a" * 32, "30003")
    _failed(db, stopped, stopped_ref, "SM" + "b" * 32, "21610", status="rejected")
    # A bot reply outside any case, to a landline.
    delivery.record(
        db,
        "SM" + "c" * 32,
        conversation_id="c" + "9" * 31,
        channel="sms",
        source="bot",
        status="undelivered",
        error_code="30006",
        entry="9-0-0",
        attempt="9-0",
    )
    dead = db.xadd(
        DEAD_LETTER_STREAM,
        {
            **conversations.outbound_fields("c" + "8" * 31, "Uma resposta retida.", source="bot"),
            "origin": OUTBOUND_STREAM,
            "original_id": "5-0",
            "error": "sealed address cannot be opened",
        },
    )
    return {"off": off, "stopped": stopped, "dead": dead}


def _private(text: str) -> None:
    for said in (REPLY, "Uma resposta retida.", DISCLOSURE):
        assert said not in text
    assert NUMBER.lstrip("+") not in text and not re.search(r"\+\d{8,}", text)


def test_a_supervisor_sees_each_failure_with_its_reason_and_nothing_private(
    db: redis.Redis, open_case, sign_in
) -> None:
    seeded = _seed(db, open_case)
    lena = sign_in("lena", role="supervisor", language="en")
    page = lena.get("/supervisor/undelivered")
    assert page.status_code == 200
    html = page.text
    _private(html)
    assert "Replies that did not arrive (3)" in html and "Dead letters (1)" in html
    assert "the phone is off or out of reach" in html
    assert "a landline, or a network that cannot receive it" in html
    assert "Cannot be sent again: the person texted STOP" in html
    assert f'href="/supervisor/cases/{seeded["off"]}/audit"' in html
    # Only the line that can be sent again has the button.
    assert html.count('data-testid="replay"') == 1
    assert f'action="/supervisor/undelivered/SM{"a" * 32}/replay"' in html
    assert f'action="/supervisor/dead-letters/{seeded["dead"]}/replay"' in html
    assert 'href="/supervisor/undelivered"' in lena.get("/supervisor").text  # in the nav

    api = lena.get("/api/supervisor/undelivered").json()
    _private(str(api))
    assert [(r["case_id"], r["reason"], r["not_replayable"]) for r in api["undelivered"]] == [
        ("", "twilio_30006", "cannot_receive"),
        (seeded["stopped"], "twilio_21610", "opted_out"),
        (seeded["off"], "twilio_30003", None),
    ]
    assert [(d["id"], d["origin"]) for d in api["dead_letters"]] == [(seeded["dead"], "outbound")]


def test_in_portuguese(db: redis.Redis, open_case, sign_in) -> None:
    _seed(db, open_case)
    rui = sign_in("rui", role="supervisor", language="pt")
    html = rui.get("/supervisor/undelivered").text
    assert "Respostas que não chegaram (3)" in html and "o telefone está desligado" in html
    assert "Não pode ser enviada de novo: a pessoa enviou PARAR" in html
    _private(html)


def test_sending_a_case_line_again_queues_it_once_for_its_line(
    db: redis.Redis, open_case, sign_in
) -> None:
    seeded = _seed(db, open_case)
    lena = sign_in("lena", role="supervisor")
    sid = "SM" + "a" * 32
    sent = lena.form(f"/supervisor/undelivered/{sid}/replay", follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/supervisor/undelivered?done=replayed&which={sid}"
    assert "is queued to be sent again" in lena.get(sent.headers["location"]).text
    [(_, entry)] = db.xrange(OUTBOUND_STREAM)
    line = next(m for m in Referrals(db).transcript(seeded["off"]) if m.outgoing)
    assert entry == {
        "conversation_id": db.hget(keys.case(seeded["off"]), "conversation_id"),
        "text": REPLY,
        "source": "counsellor",
        "case_id": seeded["off"],
        "ref": line.ref,
    }
    # A second click (or a second supervisor) finds nothing to do.
    again = lena.post(f"/api/supervisor/undelivered/{sid}/replay")
    assert again.status_code == 404 and "someone may have dealt with it" in again.json()["detail"]
    assert db.xlen(OUTBOUND_STREAM) == 1
    listed = lena.get("/api/supervisor/undelivered").json()["undelivered"]
    assert sid not in [r["id"] for r in listed]


def test_what_must_not_be_sent_again_is_refused_with_the_reason(
    db: redis.Redis, open_case, sign_in
) -> None:
    _seed(db, open_case)
    lena = sign_in("lena", role="supervisor")
    stopped = lena.post(f"/api/supervisor/undelivered/SM{'b' * 32}/replay")
    assert stopped.status_code == 409 and "texted STOP" in stopped.json()["detail"]
    landline = lena.post(f"/api/supervisor/undelivered/SM{'c' * 32}/replay")
    assert landline.status_code == 409 and "cannot receive" in landline.json()["detail"]
    page = lena.form(f"/supervisor/undelivered/SM{'b' * 32}/replay")
    assert page.status_code == 409 and "the person texted STOP" in page.text
    assert db.xlen(OUTBOUND_STREAM) == 0
    # Dismissed, it leaves the list; its record stays for the case's transcript.
    gone = lena.post(f"/api/supervisor/undelivered/SM{'b' * 32}/dismiss")
    assert gone.status_code == 200
    assert len(lena.get("/api/supervisor/undelivered").json()["undelivered"]) == 2
    assert db.exists(keys.delivery("SM" + "b" * 32))
    for bad in ("no-such-record", "../../etc", "SM" + "b" * 32):
        assert lena.post(f"/api/supervisor/undelivered/{bad}/replay").status_code in (404, 409)


def test_a_dead_letter_goes_back_on_its_stream(db: redis.Redis, open_case, sign_in) -> None:
    seeded = _seed(db, open_case)
    lena = sign_in("lena", role="supervisor")
    replayed = lena.form(
        f"/supervisor/dead-letters/{seeded['dead']}/replay", follow_redirects=False
    )
    assert replayed.status_code == 303
    assert db.xlen(DEAD_LETTER_STREAM) == 0
    [(_, entry)] = db.xrange(OUTBOUND_STREAM)
    assert entry["text"] == "Uma resposta retida." and "origin" not in entry
    twice = lena.post(f"/api/supervisor/dead-letters/{seeded['dead']}/replay")
    assert twice.status_code == 404 and db.xlen(OUTBOUND_STREAM) == 1
    assert lena.post("/api/supervisor/dead-letters/not-an-id/replay").status_code == 404


def test_a_counsellor_may_not_see_or_replay(db: redis.Redis, open_case, sign_in) -> None:
    seeded = _seed(db, open_case)
    ana = sign_in("ana")
    assert ana.get("/supervisor/undelivered").status_code == 403
    assert ana.post(f"/api/supervisor/dead-letters/{seeded['dead']}/replay").status_code == 403
    assert db.xlen(DEAD_LETTER_STREAM) == 1
