"""The hand-off as a person and a counsellor live it, in each of the four languages, in headless
chromium against the real hotline (gateway, worker, sender, Rasa, action server, console).

A person picks their language, discloses, agrees to a counsellor; while waiting they are told a
person has their message; then they write that they are in danger now: they get the emergency
numbers at once, the case jumps to the top of the queue as EMERGENCY and the open console
alerts. The counsellor claims and replies, sees a reply that never reached the phone marked as
failed, closes the case, and the bot answers the person again.
"""

from __future__ import annotations

import re

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Page, expect

from referral import accounts
from referral.texts import text
from tests.browser.conftest import Hotline
from tests.browser.test_casework import PASSWORD, WAIT_MS, sign_in, text_from_phone
from tests.domain import responses

SCRIPT = {
    "pt": {
        "pick": "PT",
        "disclosure": "o patrao ficou com o meu passaporte e nao me paga",
        "yes": "sim",
        "waiting": "ainda estou aqui",
        "danger": "socorro estao a bater-me agora, estou fechada no quarto",
        "reply": "Ola, sou a Ana, conselheira da linha. Esta em seguranca agora?",
        "again": "Ainda esta ai?",
        "question": "quero voltar para Mocambique, como faco?",
    },
    "en": {
        "pick": "EN",
        "disclosure": "my boss took my passport and doesnt pay me",
        "yes": "yes",
        "waiting": "are you there?",
        "danger": "help they are beating me now, I am locked in the room",
        "reply": "Hello, I am Ana, a counsellor. Are you safe now?",
        "again": "Are you still there?",
        "question": "how can i go back home to mozambique?",
    },
    "fr": {
        "pick": "FR",
        "disclosure": "le patron a pris mon passeport et ne me paie pas",
        "yes": "oui",
        "waiting": "vous etes la ?",
        "danger": "au secours ils me frappent maintenant, je suis enfermee dans la chambre",
        "reply": "Bonjour, je suis Ana, conseillere. Etes-vous en securite maintenant ?",
        "again": "Etes-vous toujours la ?",
        "question": "je veux rentrer chez moi, vous pouvez m'aider?",
    },
    "sw": {
        "pick": "SW",
        "disclosure": "bosi amechukua pasipoti yangu na hanilipi",
        "yes": "ndiyo",
        "waiting": "uko hapo?",
        "danger": "msaada wananipiga sasa hivi, nimefungiwa chumbani",
        "reply": "Habari, mimi ni Ana, mshauri. Uko salama sasa?",
        "again": "Bado uko hapo?",
        "question": "nataka kurudi nyumbani mnaweza kunisaidia?",
    },
}
NUMBERS = {
    "pt": "+258840009911",
    "en": "+258840009912",
    "fr": "+258840009913",
    "sw": "+258840009914",
}


def phone_says(phone: Page, body: str, wait_for: str | None = None) -> None:
    """Send from the sandbox phone; with `wait_for`, until that text arrives back."""
    text_from_phone(phone, body)
    if wait_for:
        expect(phone.locator("#thread .msg.out").last).to_contain_text(
            wait_for[:40], timeout=WAIT_MS
        )


def received(phone: Page) -> str:
    return "\n".join(phone.locator("#thread .msg.out").all_inner_texts())


@pytest.mark.parametrize("language", ["pt", "en", "fr", "sw"])
def test_disclosure_waiting_danger_reply_failure_close_and_the_bot_again(
    language: str, browser: Browser, hotline: Hotline, db: redis.Redis, artifacts
) -> None:
    script, number = SCRIPT[language], NUMBERS[language]
    # Counsellors read the console in Portuguese or English (referral/console/words).
    accounts.add(db, "ana", "counsellor", PASSWORD, language="pt" if language == "pt" else "en")
    counsellor = browser.new_context(viewport={"width": 1280, "height": 900})
    person = browser.new_context(viewport={"width": 390, "height": 800})
    try:
        queue = counsellor.new_page()
        sign_in(queue, hotline, "ana")  # her console's heartbeat puts her on duty

        phone = person.new_page()
        phone.goto(hotline.sandbox_url + "/")
        phone.fill("#number", number)
        phone.dispatch_event("#number", "change")
        phone_says(phone, script["pick"], wait_for=None)
        expect(phone.locator("#thread .msg.out")).to_have_count(1, timeout=WAIT_MS)

        # A disclosure, then consent.
        offer = responses()["utter_ask_consent"][language]
        phone_says(phone, script["disclosure"], wait_for=offer)
        phone_says(phone, script["yes"], wait_for=text("utter_case_opened", language))
        row = queue.get_by_test_id("queue-row")
        expect(row).to_have_count(1, timeout=WAIT_MS)
        expect(row).to_have_attribute("data-priority", "high")

        # Waiting: told that a person has the message, in their language.
        phone_says(phone, script["waiting"], wait_for=text("utter_waiting_ack", language))

        # Danger now while waiting: the numbers at once, EMERGENCY at the top, the console alerts.
        phone_says(phone, script["danger"], wait_for=text("utter_emergency_alerting", language))
        assert text("utter_emergency", language)[:40] in received(phone)
        expect(row).to_have_attribute("data-priority", "emergency", timeout=30_000)
        expect(queue).to_have_title(re.compile("\U0001f6a8"))

        # Claim and reply: the phone receives it, the transcript shows it delivered.
        case_id = row.get_attribute("data-case-id")
        row.get_by_test_id("case-link").click()
        case = queue
        lines = case.locator("[data-testid=transcript-line]")
        expect(lines.filter(has_text=text("utter_waiting_ack", language)[:30])).to_have_count(1)
        case.get_by_test_id("claim-button").click()
        expect(case.get_by_test_id("case-mine")).to_be_visible()
        case.get_by_test_id("reply-box").fill(script["reply"])
        case.get_by_test_id("send-button").click()
        expect(phone.locator("#thread .msg.out").last).to_contain_text(
            script["reply"][:30], timeout=30_000
        )
        mine = lines.filter(has_text=script["reply"][:30])
        expect(mine.get_by_test_id("delivery-status")).to_have_attribute(
            "data-status", "delivered", timeout=30_000
        )

        # The phone is switched off: the next reply is shown as failed, with the reason.
        httpx.post(
            hotline.sandbox_url + "/sandbox/unreachable", json={"number": number}, timeout=10
        ).raise_for_status()
        case.get_by_test_id("reply-box").fill(script["again"])
        case.get_by_test_id("send-button").click()
        failed = lines.filter(has_text=script["again"]).get_by_test_id("delivery-status")
        expect(failed).to_have_attribute("data-status", "failed", timeout=60_000)
        httpx.post(
            hotline.sandbox_url + "/sandbox/unreachable",
            json={"number": number, "on": False},
            timeout=10,
        ).raise_for_status()
        case.screenshot(path=str(artifacts / f"case-{language}.png"), full_page=True)

        # Close: one closing line, then the bot answers again.
        case.get_by_test_id("outcome-select").select_option("referred_police")
        case.get_by_test_id("close-button").click()
        expect(case.get_by_test_id("case-closed")).to_be_visible()
        closing = text("utter_case_closed", language)
        expect(phone.locator("#thread .msg.out").last).to_contain_text(closing[:30], timeout=30_000)
        phone_says(
            phone, script["question"], wait_for=responses()["utter_return_assistance"][language]
        )
        assert case_id
    except AssertionError:
        print(hotline.output())
        raise
    finally:
        for context in (counsellor, person):
            context.close()
