"""The console on a phone: at 390 px no page is wider than the screen (Debian's headless chromium).

A page wider than the screen makes a counsellor scroll sideways to find the reply box, mid-
conversation with someone in danger. The console is served on a loopback port and measured
in a real browser, because only layout tells how wide a page really is.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from ops import processes
from tests.browser.conftest import CHROMIUM_ARGS
from tests.channels.conftest import ServerThread
from tests.console.conftest import PASSWORD

PHONE = {"width": 390, "height": 844}  # an iPhone 12 to 15, the narrowest phones counsellors use

# A long word the person wrote, and a long service name, must wrap rather than widen the page.
LONG_TEXT = (
    "Socorro!!! " + "ajudaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" * 2 + " tiraram o meu passaporte"
)


@pytest.fixture
def console_url(app) -> Iterator[str]:
    server = ServerThread(app, processes.free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def phone() -> Iterator[Page]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `scripts/apt-install chromium` (make test does it)")
    # Opened and closed inside the test: Playwright's loop must not outlive it (see
    # tests/browser/conftest.py).
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True
        )
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _sign_in(page: Page, url: str, name: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def _width(page: Page) -> dict[str, object]:
    """How wide the page is, and the widest elements sticking out past the screen's edge."""
    return page.evaluate(
        """() => {
          const screen = document.documentElement.clientWidth;
          const wide = [...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > screen + 0.5)
            .slice(0, 5)
            .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`);
          return {page: document.documentElement.scrollWidth, screen, wide};
        }"""
    )


def test_the_case_page_fits_a_phone(console_url, phone: Page, sign_in, open_case) -> None:
    case_id = open_case("emergency", channel="sms", text=LONG_TEXT)
    sign_in("ana", language="pt")  # the account; the browser signs in on its own below
    _sign_in(phone, console_url, "ana")

    pages = {"queue": "/", "case, not yet taken": f"/cases/{case_id}"}
    for what, path in pages.items():
        phone.goto(console_url + path)
        width = _width(phone)
        assert width["page"] <= PHONE["width"], (what, width)

    # Taken: the reply box, services, transfer and closing forms are all on the page now.
    phone.goto(console_url + f"/cases/{case_id}")
    phone.click("[data-testid=claim-button]")
    phone.wait_for_selector("[data-testid=reply-box]")
    phone.select_option("[data-testid=service-type]", "police")
    phone.click("[data-testid=service-search-button]")
    phone.wait_for_selector("[data-testid=service-result]")
    width = _width(phone)
    assert width["page"] <= PHONE["width"], ("case, taken", width)


def test_the_supervisor_pages_fit_a_phone(console_url, phone: Page, sign_in, open_case) -> None:
    case_id = open_case("high")
    sign_in("sofia", "supervisor", language="pt")
    _sign_in(phone, console_url, "sofia")

    for path in ("/supervisor", "/supervisor/counsellors", f"/supervisor/cases/{case_id}/audit"):
        phone.goto(console_url + path)
        width = _width(phone)
        assert width["page"] <= PHONE["width"], (path, width)
