"""Issue 11 in the console: each message sent to the person says how far it got, in the
counsellor's words; a reply to a person who texted STOP is refused with the reason; an
elevated request waits ahead of a plain one.

Delivery records are written with the sender's own functions (channels.delivery), as the
sender writes them; tests/channels/test_delivery_status.py drives the real sender and Twilio
stand-in end to end.
"""

from __future__ import annotations

import html
import re
import threading
import time
from typing import Any

import pytest
import redis

from channels import delivery
from hotline import keys
from hotline.conversations import OUTBOUND_STREAM
from referral.console import casework
from referral.console.i18n import catalogue
from referral.queue import DELIVERY_REASONS, DELIVERY_STATUSES, Referrals, record_outgoing
from tests.console.test_events import _events


def _sent(db: redis.Redis, case_id: str, ref: str, sid: str, status: str, **fields: str) -> None:
    """What the sender writes once Twilio took a body carrying the line `ref`."""
    delivery.record(
        db, sid, conversation_id="c", channel="sms", status=status, attempt="1-0", **fields
    )
    delivery.link(db, sid, {case_id: [ref]})


def _line_ref(db: redis.Redis, case_id: str, text: str) -> str:
    return next(m.ref for m in Referrals(db).transcript(case_id) if m.text == text)


def _replied_hello(sign_in, open_case, db: redis.Redis) -> tuple[str, Any, str]:
    """A case Ana claimed and answered "Hello" in: its id, Ana, and the reply's line."""
    case_id = open_case()
    ana = sign_in("ana")
    ana.post(f"/api/cases/{case_id}/claim")
    ana.post(f"/api/cases/{case_id}/reply", json={"text": "Hello"})
    return case_id, ana, _line_ref(db, case_id, "Hello")


def _statuses(page: str) -> list[tuple[str, str]]:
    return [
        (status, html.unescape(words).strip())
        for status, words in re.findall(
            r'data-testid="delivery-status" data-status="(\w+)"[^>]*>([^<]*)<', page
        )
    ]


def test_each_outgoing_line_shows_how_far_it_got_in_the_counsellors_language(
    sign_in, open_case, db: redis.Redis
) -> None:
    case_id = open_case()
    ana = sign_in("ana", language="en")
    ana.post(f"/api/cases/{case_id}/claim")
    for text in ("Are you safe now?", "Can you call 119?", "We found a shelter."):
        assert ana.post(f"/api/cases/{case_id}/reply", json={"text": text}).status_code == 200
    # The hotline's own text while the case is open is a line too, with its status.
    with db.pipeline(transaction=True) as pipe:
        record_outgoing(pipe, case_id, "A counsellor has your message.", author="bot", at=1e10)
        pipe.execute()
    _sent(db, case_id, _line_ref(db, case_id, "Are you safe now?"), "SM1", "delivered")
    _sent(
        db,
        case_id,
        _line_ref(db, case_id, "Can you call 119?"),
        "SM2",
        "undelivered",
        error_code="30003",
    )

    page = ana.get(f"/cases/{case_id}").text
    assert _statuses(page) == [
        ("delivered", "delivered"),
        ("failed", "not delivered: the phone is off or out of reach"),
        ("queued", "waiting to be sent"),
        ("queued", "waiting to be sent"),
    ]
    assert "Hotline (automatic)" not in page  # the bot's line reads as the assistant's
    # The person's own messages and the bot part from before the case carry no status.
    assert page.count('data-testid="delivery-status"') == 4

    lines = ana.get(f"/api/cases/{case_id}").json()["transcript"]
    outgoing = [line for line in lines if line["delivery"]]
    assert [line["text"] for line in outgoing] == [
        "Are you safe now?",
        "Can you call 119?",
        "We found a shelter.",
        "A counsellor has your message.",
    ]
    assert outgoing[1]["delivery"] == {
        "status": "failed",
        "reason": "twilio_30003",
        "words": "not delivered: the phone is off or out of reach",
    }
    assert all(line["delivery"] is None for line in lines if line["author"] == "person")

    # A Portuguese-speaking counsellor reads the same in Portuguese.
    rui = sign_in("rui", role="supervisor", language="pt")
    assert _statuses(rui.get(f"/cases/{case_id}").text)[:2] == [
        ("delivered", "entregue"),
        ("failed", "não entregue: o telefone está desligado ou sem rede"),
    ]


def test_a_status_report_reaches_the_open_case_page_live(
    sign_in, open_case, db: redis.Redis
) -> None:
    case_id, ana, ref = _replied_hello(sign_in, open_case, db)

    def reported() -> None:
        time.sleep(0.4)  # after the page started following
        _sent(db, case_id, ref, "SM9", "sent")

    writer = threading.Thread(target=reported)
    with ana.client.stream("GET", f"/events?case={case_id}") as response:
        writer.start()
        events = _events(response, 1)
    writer.join()
    assert events[0]["data"] == {"case": case_id, "action": "delivery", "priority": ""}
    # What the page then fetches shows the new status.
    fragment = ana.get(f"/cases/{case_id}/transcript").text
    assert _statuses(fragment) == [("sent", "sent, not yet on the phone")]


def test_a_status_report_landing_while_the_case_page_is_built_still_reaches_it(
    sign_in, open_case, db: redis.Redis, monkeypatch
) -> None:
    # A reply's "delivered" comes within a second of the reply, often while the page the
    # reply redirects to is being built: it must still reach that page, not be skipped.
    case_id, ana, ref = _replied_hello(sign_in, open_case, db)
    read_lines = casework.transcript_lines

    def lines_then_a_report(case):
        lines = read_lines(case)  # the page has read the transcript: still no status
        _sent(db, case_id, ref, "SM10", "delivered")
        return lines

    monkeypatch.setattr(casework, "transcript_lines", lines_then_a_report)
    page = ana.get(f"/cases/{case_id}").text
    monkeypatch.setattr(casework, "transcript_lines", read_lines)
    assert _statuses(page) == [("queued", "waiting to be sent")]

    since = re.search(r'id="case" data-case-id="[^"]+" data-since="([^"]+)"', page).group(1)
    with ana.client.stream("GET", f"/events?case={case_id}&since={since}") as response:
        events = _events(response, 1)
    assert [e["data"]["action"] for e in events] == ["delivery"]
    fragment = ana.get(f"/cases/{case_id}/transcript").text
    assert _statuses(fragment) == [("delivered", "delivered")]


def test_a_reply_to_a_person_who_texted_stop_is_refused_with_the_reason(
    sign_in, open_case, db: redis.Redis
) -> None:
    case_id = open_case()
    cid = Referrals(db).get(case_id, transcript=False).conversation_id
    ana = sign_in("ana", language="en")
    ana.post(f"/api/cases/{case_id}/claim")
    db.hset(keys.conversation(cid), "opted_out", "1")

    refused = ana.post(f"/api/cases/{case_id}/reply", json={"text": "Are you there?"})
    assert refused.status_code == 409
    assert refused.json()["error"] == "opted_out"
    assert "texted STOP" in refused.json()["detail"] and "START" in refused.json()["detail"]
    assert db.xlen(OUTBOUND_STREAM) == 0

    # The case page says so before anyone writes, and a form reply is refused, never "sent".
    page = ana.get(f"/cases/{case_id}").text
    assert 'data-testid="opted-out"' in page
    answer = ana.form(f"/cases/{case_id}/reply", {"text": "Are you there?"})
    assert answer.status_code == 200 and str(answer.url).endswith(f"/cases/{case_id}")
    flash = re.search(r'class="flash error" data-testid="flash"[^>]*>([^<]*)<', answer.text)
    assert flash and "This person texted STOP" in html.unescape(flash.group(1))
    assert "Reply on its way" not in answer.text
    assert db.xlen(OUTBOUND_STREAM) == 0
    assert not [m for m in Referrals(db).transcript(case_id) if m.author == "counsellor"]

    rui = sign_in("rui", role="supervisor", language="pt")
    answer = rui.form(f"/cases/{case_id}/reply", {"text": "Olá?"})
    assert "Esta pessoa enviou PARAR" in html.unescape(answer.text)


def test_an_elevated_request_waits_ahead_of_a_plain_one(sign_in, db: redis.Redis) -> None:
    referrals = Referrals(db)

    def request(cid: str, level: str, priority: str = "request") -> str:
        return referrals.open_case(
            cid,
            priority=priority,
            channel="sms",
            language="pt",
            risk_level=level,  # type: ignore[arg-type]
        ).case_id

    plain = request("c-plain", "none")
    elevated = request("c-elevated", "elevated")
    high = request("c-high", "high", "high")
    ana = sign_in("ana")
    assert [c["id"] for c in ana.get("/api/queue").json()] == [high, elevated, plain]
    rows = ana.get("/queue/rows").text
    assert rows.index(f'data-case-id="{elevated}"') < rows.index(f'data-case-id="{plain}"')


@pytest.mark.parametrize("language", ["en", "pt"])
def test_every_delivery_status_and_reason_has_plain_words(language: str) -> None:
    words = catalogue(language)
    assert {f"delivery_{status}" for status in DELIVERY_STATUSES} <= set(words)
    reasons = [*DELIVERY_REASONS, *(f"twilio_{code}" for code in casework.NAMED_TWILIO_ERRORS)]
    assert {f"delivery_reason_{reason}" for reason in reasons} <= set(words)
    for reason in reasons:
        assert not re.search(r"\d{5}", words[f"delivery_reason_{reason}"]), reason
