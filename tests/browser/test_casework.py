"""A counsellor's whole case in headless chromium, against the real hotline.

A person texts a disclosure from the sandbox phone and agrees to talk to someone; the case
appears live on the counsellor's open queue page; she claims it (a colleague's later claim
is refused), reads the bot's part, replies (the phone receives it), adds a note, inserts a
service into a reply, closes the case with an outcome; the person writes again and the bot
answers. Screenshots of the queue, the case and the dashboard go to tests/artifacts/.
"""

from __future__ import annotations

import re

import redis
from playwright.sync_api import Browser, Page, expect

from referral import accounts
from tests.browser.conftest import Hotline
from tests.domain import responses

PASSWORD = "a long browser password"
NUMBER = "+258840009901"
DISCLOSURE = (
    "my boss took my passport and says i owe him for the transport, i cannot leave the farm"
)
REPLY = "Hello, my name is Ana, I am a counsellor. Are you safe to talk now?"
WAIT_MS = 90_000  # the person's messages go through the real Rasa on a loaded 2-core machine


def sign_in(page: Page, hotline: Hotline, name: str) -> None:
    page.goto(hotline.console_url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("signed-in-as")).to_contain_text(name)


def text_from_phone(phone: Page, body: str) -> None:
    phone.fill("#body", body)
    phone.click("#compose button[type=submit]")
    expect(phone.locator("#thread .msg.in").last).to_contain_text(body[:20], timeout=10_000)


def replies_on_phone(phone: Page) -> list[str]:
    return phone.locator("#thread .msg.out").all_inner_texts()


def test_a_case_from_disclosure_to_hand_back(
    browser: Browser, hotline: Hotline, db: redis.Redis, artifacts
) -> None:
    for name, role in (("ana", "counsellor"), ("ben", "counsellor"), ("sofia", "supervisor")):
        accounts.add(db, name, role, PASSWORD, language="en")
    counsellor = browser.new_context(viewport={"width": 1280, "height": 900})
    colleague = browser.new_context()
    person = browser.new_context(viewport={"width": 420, "height": 800})
    try:
        queue = counsellor.new_page()
        sign_in(queue, hotline, "ana")
        expect(queue.get_by_test_id("queue-empty")).to_be_visible()

        phone = person.new_page()
        phone.goto(hotline.sandbox_url + "/")
        phone.fill("#number", NUMBER)
        phone.dispatch_event("#number", "change")
        text_from_phone(phone, DISCLOSURE)
        # The bot acknowledges and asks for consent before anyone is told.
        expect(phone.locator("#thread .msg.out")).not_to_have_count(0, timeout=WAIT_MS)
        offer = responses()["utter_ask_consent"]["en"]
        assert any(offer[:30] in text for text in replies_on_phone(phone)), replies_on_phone(phone)
        expect(queue.get_by_test_id("queue-empty")).to_be_visible()
        text_from_phone(phone, "yes")

        # The case arrives on the open queue page without a reload.
        row = queue.get_by_test_id("queue-row")
        expect(row).to_have_count(1, timeout=WAIT_MS)
        expect(row.get_by_test_id("risk-badge")).to_contain_text(re.compile("high", re.IGNORECASE))
        expect(row.get_by_test_id("queue-evidence")).to_contain_text(
            re.compile("passport|document", re.IGNORECASE)
        )
        expect(row.get_by_test_id("queue-channel")).to_contain_text("SMS")
        assert NUMBER not in queue.content() and NUMBER[-9:] not in queue.content()
        queue.screenshot(path=str(artifacts / "queue.png"), full_page=True)

        case_id = row.get_attribute("data-case-id")
        row.get_by_test_id("case-link").click()
        case = queue
        expect(case.get_by_test_id("transcript-line").first).to_be_visible()
        expect(case.locator("[data-testid=transcript-line][data-author=bot]")).not_to_have_count(0)
        expect(
            case.locator("[data-testid=transcript-line][data-author=person]").first
        ).to_contain_text("passport")
        expect(case.get_by_test_id("evidence").first).to_be_visible()
        assert NUMBER not in case.content()

        # A colleague has the case open too; Ana is faster.
        other = colleague.new_page()
        sign_in(other, hotline, "ben")
        other.goto(f"{hotline.console_url}/cases/{case_id}")
        case.get_by_test_id("claim-button").click()
        expect(case.get_by_test_id("case-mine")).to_be_visible()
        other.get_by_test_id("claim-button").click()
        expect(other.get_by_test_id("flash")).to_contain_text("ana has already taken this case")

        # Reply: the person's phone receives it.
        case.get_by_test_id("reply-box").fill(REPLY)
        expect(case.get_by_test_id("segment-counter")).to_contain_text("1")
        case.get_by_test_id("send-button").click()
        expect(phone.locator("#thread .msg.out").last).to_contain_text(REPLY, timeout=30_000)
        expect(
            case.locator("[data-testid=transcript-line][data-author=counsellor]")
        ).to_contain_text(REPLY)

        # The person answers; it reaches the case, not the bot.
        bot_replies = len(replies_on_phone(phone))
        text_from_phone(phone, "yes i am alone now, i am in Ressano Garcia")
        expect(
            case.locator("[data-testid=transcript-line][data-author=person]").last
        ).to_contain_text("Ressano Garcia", timeout=30_000)
        assert len(replies_on_phone(phone)) == bot_replies, (
            "the bot must stay silent while a case is open"
        )

        case.get_by_test_id("note-box").fill(
            "Safe to talk; in Ressano Garcia. Shelter and police referral."
        )
        case.get_by_test_id("note-button").click()
        expect(case.locator("[data-testid=transcript-line][data-kind=note]")).to_contain_text(
            "Shelter"
        )

        # Refer: find a service and put it into a reply.
        case.get_by_test_id("service-search-button").click()
        expect(case.get_by_test_id("service-result").first).to_be_visible()
        case.get_by_test_id("insert-service").first.click()
        expect(case.get_by_test_id("reply-box")).not_to_have_value("")
        inserted = case.get_by_test_id("reply-box").input_value()
        case.get_by_test_id("send-button").click()
        expect(phone.locator("#thread .msg.out").last).to_contain_text(
            inserted.splitlines()[0][:30], timeout=30_000
        )
        case.screenshot(path=str(artifacts / "case.png"), full_page=True)

        case.get_by_test_id("outcome-select").select_option("referred_shelter")
        case.get_by_test_id("close-note").fill(
            "Referred to the shelter; police informed with consent."
        )
        case.get_by_test_id("close-button").click()
        expect(case.get_by_test_id("case-closed")).to_be_visible()
        closing = responses()["utter_case_closed"]["en"]
        expect(phone.locator("#thread .msg.out").last).to_contain_text(closing[:30], timeout=30_000)

        # The bot has the conversation back.
        before = len(replies_on_phone(phone))
        text_from_phone(phone, "how can i go back home to mozambique?")
        expect(phone.locator("#thread .msg.out")).to_have_count(before + 1, timeout=WAIT_MS)
        assert responses()["utter_return_assistance"]["en"][:30] in replies_on_phone(phone)[-1]

        dashboard = colleague.new_page()
        sign_in(dashboard, hotline, "sofia")
        dashboard.goto(hotline.console_url + "/supervisor")
        expect(dashboard.get_by_test_id("chart-outcome-referred_shelter")).to_contain_text("1")
        dashboard.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    except AssertionError:
        print(hotline.output())
        raise
    finally:
        for context in (counsellor, colleague, person):
            context.close()
