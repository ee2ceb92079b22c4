"""The counsellor's pages: what they show, and the forms that work a case."""

from __future__ import annotations

import re
import time

import redis

from hotline.conversations import OUTBOUND_STREAM
from referral import rota
from referral.queue import Referrals
from tests.console.conftest import NUMBER


def _flash(html: str) -> str:
    match = re.search(r'data-testid="flash"[^>]*>([^<]*)<', html)
    assert match, "no flash message on the page"
    return match.group(1)


def test_anonymous_pages_redirect_to_login(anonymous, open_case) -> None:
    case_id = open_case()
    for url in ["/", f"/cases/{case_id}", "/queue/rows", f"/cases/{case_id}/transcript"]:
        response = anonymous.get(url, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"] == "/login"


def test_the_queue_shows_the_case_with_its_evidence_and_no_full_number(sign_in, open_case) -> None:
    case_id = open_case("emergency")
    page = sign_in("ana").get("/")

    assert page.status_code == 200
    row = re.search(rf'<tr[^>]*data-case-id="{case_id}".*?</tr>', page.text, re.DOTALL)
    assert row, "the case is not in the queue"
    assert 'data-testid="queue-row"' in row.group(0)
    assert "documents taken; not free to leave" in row.group(0)
    assert "badge emergency" in row.group(0)
    assert "WhatsApp" in row.group(0) and "EN" in row.group(0)
    assert "1 min" in row.group(0) or "0 min" in row.group(0)
    for form in (NUMBER, NUMBER[1:], NUMBER[4:]):
        assert form not in page.text


def test_the_queue_shows_signals_in_the_counsellors_language_never_codes(
    sign_in, open_case, db: redis.Redis
) -> None:
    disclosure = open_case("high", language="sw")
    # Someone who asked for a person: no signal, only the intent.
    asked = (
        Referrals(db)
        .open_case(
            "c-asked",
            priority="request",
            channel="sms",
            language="sw",
            risk_level="none",
            consent="requested",
            trigger="request_human",
        )
        .case_id
    )
    pages = {
        "en": sign_in("ana", language="en").get("/").text,
        "pt": sign_in("paula", language="pt").get("/").text,
    }

    def row(html: str, case_id: str) -> str:
        found = re.search(rf'<tr[^>]*data-case-id="{case_id}".*?</tr>', html, re.DOTALL)
        assert found, case_id
        return found.group(0)

    assert "documents taken; not free to leave" in row(pages["en"], disclosure)
    assert "documentos retidos; não pode sair" in row(pages["pt"], disclosure)
    assert "asked for a counsellor" in row(pages["en"], asked)
    assert "pediu um conselheiro" in row(pages["pt"], asked)
    for html in pages.values():
        assert "request_human" not in html and "report_exploitation" not in html


def test_the_queue_tabs(sign_in, open_case) -> None:
    case_id = open_case()
    ana = sign_in("ana")
    # The row, not the bare id: a random CSRF token on the page may contain "R1".
    assert f'data-case-id="{case_id}"' not in ana.get("/?tab=mine").text
    ana.form(f"/cases/{case_id}/claim")
    assert f'data-case-id="{case_id}"' in ana.get("/?tab=mine").text
    assert f'data-case-id="{case_id}"' in ana.get("/?tab=open").text
    assert f'data-case-id="{case_id}"' not in ana.get("/").text
    assert 'data-testid="queue-empty"' in ana.get("/").text
    assert f'data-case-id="{case_id}"' in ana.get("/queue/rows?tab=open").text


def test_the_case_page_shows_the_transcript_with_evidence_marked(sign_in, open_case) -> None:
    case_id = open_case()
    page = sign_in("ana").get(f"/cases/{case_id}")

    assert page.status_code == 200
    assert page.text.count('data-testid="transcript-line"') == 4
    assert re.search(
        r'<mark class="evidence"[^>]*data-indicator="documents_confiscated"[^>]*>took my passport</mark>',
        page.text,
    )
    assert 'data-testid="masked-number">whatsapp:+258 ••• ••67<' in page.text
    for form in (NUMBER, NUMBER[1:], NUMBER[4:]):
        assert form not in page.text
    assert 'data-testid="claim-button"' in page.text
    assert 'data-testid="reply-box"' not in page.text  # not before claiming
    assert "Consent given" in page.text


def test_an_unknown_case_page_is_404(sign_in) -> None:
    page = sign_in("ana").get("/cases/R404")
    assert page.status_code == 404
    assert "Case R404 does not exist." in page.text


def test_claim_reply_note_and_close_through_the_forms(sign_in, open_case, db: redis.Redis) -> None:
    case_id = open_case(channel="sms")
    ana = sign_in("ana")

    claimed = ana.form(f"/cases/{case_id}/claim")
    assert claimed.status_code == 200  # followed the redirect back to the case
    assert _flash(claimed.text) == f"You took case {case_id}."
    for testid in (
        "reply-box",
        "send-button",
        "note-box",
        "note-button",
        "segment-counter",
        "canned-select",
        "service-search",
        "outcome-select",
        "close-button",
        "transfer-select",
    ):
        assert f'data-testid="{testid}"' in claimed.text, testid

    sent = ana.form(f"/cases/{case_id}/reply", {"text": "We can help you."})
    assert _flash(sent.text) == "Reply on its way: how far it got shows next to it."
    assert db.xrange(OUTBOUND_STREAM)[-1][1]["text"] == "We can help you."
    assert "We can help you." in sent.text

    noted = ana.form(f"/cases/{case_id}/note", {"text": "She is safe for tonight."})
    assert _flash(noted.text) == "Note saved."
    assert 'class="note"' in noted.text

    closed = ana.form(f"/cases/{case_id}/close", {"outcome": "referred_shelter", "note": ""})
    assert _flash(closed.text) == "Case closed. The assistant has taken the conversation back."
    assert 'data-testid="case-closed"' in closed.text
    assert Referrals(db).get(case_id, transcript=False).outcome == "referred_shelter"


def test_a_second_claimer_is_told_who_was_faster(sign_in, open_case) -> None:
    case_id = open_case()
    ana, bob = sign_in("ana"), sign_in("bob")
    ana.form(f"/cases/{case_id}/claim")

    late = bob.form(f"/cases/{case_id}/claim")

    assert late.status_code == 200
    assert _flash(late.text) == "ana has already taken this case."
    assert 'class="flash error"' in late.text
    assert 'data-testid="close-button"' not in late.text


def test_a_counsellor_cannot_close_another_counsellors_case_by_form(
    sign_in, open_case, db: redis.Redis
) -> None:
    case_id = open_case()
    ana, bob = sign_in("ana"), sign_in("bob")
    ana.form(f"/cases/{case_id}/claim")

    refused = bob.form(f"/cases/{case_id}/close", {"outcome": "declined"})

    assert "This case belongs to ana" in _flash(refused.text)
    assert Referrals(db).get(case_id, transcript=False).status == "claimed"


def test_a_form_without_the_csrf_token_is_refused(sign_in, open_case) -> None:
    case_id = open_case()
    ana = sign_in("ana")
    response = ana.client.post(f"/cases/{case_id}/claim", data={})
    assert response.status_code == 403


def test_whatsapp_24_hour_window_warning(sign_in, open_case) -> None:
    old = open_case(channel="whatsapp", at=time.time() - 30 * 3600)
    recent = open_case(channel="whatsapp")
    ana = sign_in("ana")
    ana.form(f"/cases/{old}/claim")
    ana.form(f"/cases/{recent}/claim")

    assert 'data-testid="window-warning"' in ana.get(f"/cases/{old}").text
    assert 'data-testid="window-warning"' not in ana.get(f"/cases/{recent}").text


def test_transfer_form(sign_in, open_case, db: redis.Redis) -> None:
    case_id = open_case()
    ana, _ = sign_in("ana"), sign_in("bob")
    ana.form(f"/cases/{case_id}/claim")

    moved = ana.form(f"/cases/{case_id}/transfer", {"to": "bob"})

    assert _flash(moved.text) == "Case transferred to bob."
    assert Referrals(db).get(case_id, transcript=False).claimed_by == "bob"


def test_services_fragment_has_insert_buttons(sign_in, open_case) -> None:
    case_id = open_case(language="pt")
    fragment = sign_in("ana").get(f"/cases/{case_id}/services?province=Maputo Cidade&type=office")
    assert fragment.status_code == 200
    assert 'data-testid="service-result"' in fragment.text
    assert 'data-insert="OIM Mocambique, escritorio de Maputo: +258 21 310 779' in fragment.text
    assert 'data-testid="insert-service"' in fragment.text


def test_new_messages_show_in_the_transcript_fragment(sign_in, open_case, db: redis.Redis) -> None:
    case_id = open_case()
    ana = sign_in("ana")
    Referrals(db).append_message(case_id, text="are you still there?")
    fragment = ana.get(f"/cases/{case_id}/transcript")
    assert "are you still there?" in fragment.text


def test_the_queue_page_heartbeat(sign_in, db: redis.Redis) -> None:
    ana = sign_in("ana")
    assert ana.post("/heartbeat").status_code == 204
    assert "ana" in rota.present(db)


def test_interface_language_per_counsellor(sign_in) -> None:
    ana = sign_in("ana", language="en")
    assert "Waiting" in ana.get("/").text
    ana.form(
        "/me/language",
        {"language": "pt"},
        headers={"referer": "http://testserver/?tab=open"},
        follow_redirects=False,
    )
    assert "À espera" in ana.get("/").text


def test_sign_out_leaves_the_rota(sign_in, db: redis.Redis) -> None:
    ana = sign_in("ana")
    ana.post("/heartbeat")
    ana.form("/logout", follow_redirects=False)
    assert rota.present(db) == []
    assert ana.get("/", follow_redirects=False).status_code == 303


def test_a_busy_queue_shows_the_most_urgent_first_and_says_how_many_more(sign_in, db) -> None:
    from referral.console.casework import QUEUE_ROWS
    from referral.queue import Referrals

    referrals = Referrals(db)
    for index in range(QUEUE_ROWS + 20):
        referrals.open_case(f"c{index:031x}", priority="request", channel="sms", language="pt")
    urgent = referrals.open_case(
        "c" + "f" * 31, priority="emergency", channel="sms", language="pt"
    ).case_id

    page = sign_in().get("/").text

    assert page.count('data-testid="queue-row"') == QUEUE_ROWS
    assert page.index(f'data-case-id="{urgent}"') < page.index('data-case-id="R1"')
    assert f"first {QUEUE_ROWS} of {QUEUE_ROWS + 21}" in page


def test_an_unknown_page_is_a_console_page_and_an_unknown_api_path_json(sign_in) -> None:
    ana = sign_in("ana")
    page = ana.get("/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no such page in the console." in page.text
    api = ana.get("/api/no/such/thing")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


def test_a_refused_form_is_a_page_not_json(sign_in) -> None:
    ana = sign_in("ana")
    page = ana.client.post("/me/language", data={"language": "pt", "csrf_token": "forged"})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "reload the page" in page.text
    assert (
        'data-testid="signed-in-as">ana<' in page.text
    )  # the console's own header, in ana's words
