"""The delivery status and the STOP refusal as a counsellor meets them, on a phone-sized page
in Debian's headless chromium: the status changes live, a refused reply keeps its words."""

from __future__ import annotations

import redis
from playwright.sync_api import Page

from channels import delivery
from hotline import keys
from referral.queue import Referrals
from tests.console.test_phone_width import (  # noqa: F401 (fixtures)
    PHONE,
    _sign_in,
    _width,
    console_url,
    phone,
)


def test_a_reply_shows_its_status_and_the_status_moves_on_live(
    console_url: str,  # noqa: F811
    phone: Page,  # noqa: F811
    sign_in,
    open_case,
    db: redis.Redis,
) -> None:
    case_id = open_case("high", channel="sms")
    sign_in("ana", language="pt")
    _sign_in(phone, console_url, "ana")
    phone.goto(console_url + f"/cases/{case_id}")
    phone.click("[data-testid=claim-button]")
    phone.fill("[data-testid=reply-box]", "Ola, sou a Ana.")
    phone.click("[data-testid=send-button]")
    status = phone.locator("[data-testid=delivery-status]")
    assert status.inner_text() == "à espera de envio"
    phone.wait_for_selector("[data-testid=live-status].on")

    # The sender's record, then Twilio's report that the phone is off: the line follows.
    ref = next(m.ref for m in Referrals(db).transcript(case_id) if m.outgoing)
    delivery.record(db, "SMlive", conversation_id="c", channel="sms", status="sent", attempt="1")
    delivery.link(db, "SMlive", {case_id: [ref]})
    phone.wait_for_selector("[data-testid=delivery-status][data-status=sent]")
    db.hset(keys.delivery("SMlive"), mapping={"status": "undelivered", "error_code": "30003"})
    delivery.link(db, "SMlive", {case_id: [ref]})  # as the callback announces it
    phone.wait_for_selector("[data-testid=delivery-status][data-status=failed]")
    assert status.inner_text() == "não entregue: o telefone está desligado ou sem rede"
    assert _width(phone)["page"] <= PHONE["width"]


def test_a_refused_reply_keeps_its_words_in_the_box(
    console_url: str,  # noqa: F811
    phone: Page,  # noqa: F811
    sign_in,
    open_case,
    db: redis.Redis,
) -> None:
    case_id = open_case("high", channel="sms")
    sign_in("ana", language="en")
    _sign_in(phone, console_url, "ana")
    phone.goto(console_url + f"/cases/{case_id}")
    phone.click("[data-testid=claim-button]")
    phone.wait_for_selector("[data-testid=reply-box]")
    # The person texts STOP while the counsellor writes.
    cid = Referrals(db).get(case_id, transcript=False).conversation_id
    db.hset(keys.conversation(cid), "opted_out", "1")
    phone.fill("[data-testid=reply-box]", "We found you a bed for tonight.")
    phone.click("[data-testid=send-button]")

    flash = phone.wait_for_selector("[data-testid=flash].error")
    assert flash.inner_text().startswith("This person texted STOP")
    assert phone.input_value("[data-testid=reply-box]") == "We found you a bed for tonight."
    assert phone.locator("[data-testid=opted-out]").is_visible()
    assert phone.locator("[data-testid=delivery-status]").count() == 0
