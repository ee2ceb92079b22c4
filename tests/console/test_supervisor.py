"""The supervisor's console against the real Redis: figures, audit trails, accounts, permissions."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from referral import accounts, rota
from referral.console import deps, supervisor
from referral.console.i18n import catalogue
from referral.queue import OUTCOMES, Referrals

from .conftest import PASSWORD

MAPUTO = ZoneInfo("Africa/Maputo")


def at(text: str) -> float:
    """Epoch seconds of a Maputo wall-clock time, '2024-05-08 10:00' (a Wednesday)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=MAPUTO).timestamp()


NOW = at("2024-05-08 10:00")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app) -> Clock:
    """The queue's clock and the dashboard's 'now', the same fixed moment."""
    fixed = Clock(NOW)
    app.dependency_overrides[deps.clock_dep] = lambda: lambda: fixed.now
    return fixed


@pytest.fixture
def referrals(db: redis.Redis, clock: Clock) -> Referrals:
    return Referrals(db, clock=clock)


@pytest.fixture
def boss(sign_in):
    return sign_in("sofia", "supervisor", language="en")


def open_case(referrals: Referrals, cid: str, level: str = "high", language: str = "pt") -> str:
    priority = {"emergency": "emergency", "high": "high"}.get(level, "request")
    return referrals.open_case(
        cid,
        priority=priority,
        channel="whatsapp",
        language=language,
        risk_level=level,
        consent="given",
    ).case_id


def text_of(html: str, name: str, tag: str = "") -> str:
    """The text of the element with this data-testid, up to the first closing tag (or the closing
    `tag` given), tags stripped and spaces squeezed."""
    match = re.search(rf'data-testid="{name}"[^>]*>(.*?)</{tag}', html, re.DOTALL)
    assert match, f"no data-testid={name}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def fresh_login(app, name: str, password: str) -> int:
    with TestClient(app) as client:
        return client.post(
            "/login", data={"name": name, "password": password}, follow_redirects=False
        ).status_code


# ---------------------------------------------------------------- the dashboard


@pytest.fixture
def known_day(db: redis.Redis, referrals: Referrals, clock: Clock) -> dict[str, str]:
    """Yesterday one case; today waits of 2, 10 and 20 minutes and one still waiting 5 minutes."""
    clock.now = at("2024-05-07 15:00")
    yesterday = open_case(referrals, "c1", language="sw")
    clock.now += 3600
    referrals.claim(yesterday, "ana")
    referrals.close(yesterday, "ana", "referred_shelter")
    clock.now = at("2024-05-08 08:00")
    quick = open_case(referrals, "c2", language="en")
    clock.now += 120
    referrals.claim(quick, "ana")
    referrals.close(quick, "ana", "information_given")
    clock.now = at("2024-05-08 09:00")
    taken = open_case(referrals, "c3")
    clock.now += 600
    referrals.claim(taken, "bia")
    clock.now = at("2024-05-08 09:40")
    urgent = open_case(referrals, "c4", level="emergency")
    clock.now = at("2024-05-08 09:55")
    worried = open_case(referrals, "c5", level="elevated", language="en")
    clock.now = NOW
    accounts.add(db, "bia", "counsellor", PASSWORD)
    accounts.add(db, "dora", "counsellor", PASSWORD)
    accounts.set_active(db, "dora", False)
    for name in ("bia", "dora", "ghost"):  # a disabled account and a removed one do not count
        rota.heartbeat(db, name, now=NOW - 10)
    return {
        "yesterday": yesterday,
        "quick": quick,
        "taken": taken,
        "urgent": urgent,
        "worried": worried,
    }


def test_the_dashboard_api_gives_the_figures_of_a_known_day(boss, known_day) -> None:
    response = boss.get("/api/supervisor/dashboard")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["waiting_by_level"] == {"emergency": 1, "high": 0, "elevated": 1, "none": 0}
    assert body["waiting_total"] == 2
    assert body["oldest_waiting_seconds"] == 20 * 60
    # Today: 2 min, 10 min, 20 min (still waiting), 5 min (still waiting).
    assert body["wait_today"] == {
        "cases": 4,
        "median_seconds": 450.0,
        "longest_seconds": 1200.0,
        "longest_case": known_day["urgent"],
    }
    assert body["timezone"] == "Africa/Maputo"
    assert body["cases_in_window"] == 5
    assert body["by_outcome"]["referred_shelter"] == 1
    assert body["by_outcome"]["information_given"] == 1
    assert body["by_outcome"]["open"] == 3
    assert body["by_language"] == {"pt": 2, "en": 2, "fr": 0, "sw": 1}
    assert body["staffing"]["present"] == [{"name": "bia", "role": "counsellor"}]
    assert body["staffing"]["in_hours"] and body["staffing"]["on_duty"]
    assert [c["id"] for c in body["open_cases"]] == [
        known_day["urgent"],
        known_day["worried"],
        known_day["taken"],
    ]
    assert [c["id"] for c in body["recently_closed"]] == [
        known_day["quick"],
        known_day["yesterday"],
    ]
    # The figures carry no conversation id, summary or evidence.
    assert "conversation_id" not in response.text and "indicators" not in response.text


def test_the_dashboard_page_shows_the_same_figures(boss, known_day) -> None:
    response = boss.get("/supervisor")
    assert response.status_code == 200
    html = response.text
    assert text_of(html, "waiting-emergency") == "1"
    assert text_of(html, "waiting-high") == "0"
    assert text_of(html, "waiting-total") == "2"
    assert text_of(html, "median-wait") == "7 min 30 s"
    assert text_of(html, "longest-wait").startswith("20 min")
    assert text_of(html, "cases-today") == "4"
    assert text_of(html, "chart-outcome-referred_shelter") == "1"
    assert text_of(html, "chart-language-en") == "2"
    assert 'data-testid="chart"' in html and "<svg" in html
    assert "bia" in text_of(html, "on-duty-list", "ul")
    for case_id in known_day.values():
        assert f'href="/supervisor/cases/{case_id}/audit"' in html
    assert '<link rel="stylesheet" href="/static/supervisor.css">' in html
    assert boss.get("/static/supervisor.css").status_code == 200


def test_the_dashboard_says_so_when_nobody_is_on_duty(boss, clock: Clock) -> None:
    clock.now = at("2024-05-08 22:00")  # after the 21:00 end of the rota's day
    body = boss.get("/api/supervisor/dashboard").json()
    assert body["staffing"] == {
        "in_hours": False,
        "on_duty": False,
        "present": [],
        "next_shift": at("2024-05-09 06:00"),
    }
    assert body["wait_today"]["median_seconds"] is None
    html = boss.get("/supervisor").text
    assert "Nobody answers now" in html
    assert "Nobody has the console open" in html
    assert "No case opened today" in html


def test_a_portuguese_supervisor_reads_the_dashboard_in_portuguese(sign_in, clock) -> None:
    chefe = sign_in("marta", "supervisor", language="pt")
    html = chefe.get("/supervisor").text
    assert "À espera agora" in html and "Conselheiros de serviço" in html


# ---------------------------------------------------------------- audit trail


def test_the_audit_trail_lists_who_did_what_and_when_but_never_texts(
    boss, referrals: Referrals, clock: Clock
) -> None:
    case_id = open_case(referrals, "c1")
    clock.now += 60
    referrals.claim(case_id, "ana")
    clock.now += 60
    referrals.append_message(case_id, text="they took my passport, call +258841234567")
    referrals.reply(case_id, "ana", "We can help; are you safe now?")
    referrals.note(case_id, "ana", "private note about the employer")
    clock.now += 60
    referrals.close(case_id, "ana", "referred_shelter", note="closing words")

    response = boss.get(f"/api/supervisor/cases/{case_id}/audit")
    assert response.status_code == 200
    body = response.json()
    assert [e["action"] for e in body["events"]] == [
        "opened",
        "claimed",
        "message_received",
        "replied",
        "noted",
        "closed",
    ]
    claimed, closed = body["events"][1], body["events"][-1]
    assert (claimed["actor"], claimed["at"]) == ("ana", NOW + 60)
    assert closed["actor"] == "ana" and closed["detail"] == {
        "outcome": "referred_shelter",
        "note": True,
    }
    assert body["case"]["status"] == "closed" and body["case"]["outcome"] == "referred_shelter"

    page = boss.get(f"/supervisor/cases/{case_id}/audit")
    assert page.status_code == 200
    html = page.text
    assert 'data-action="claimed"' in html and 'data-action="closed"' in html
    assert "Took the case" in html and "Closed the case" in html and "Referred: shelter" in html
    assert "10:01" in html  # the claim, in Maputo time
    for private in ("passport", "258841234567", "are you safe", "employer", "closing words"):
        assert private not in html and private not in response.text


def test_audit_details_keep_codes_and_names_but_drop_anything_like_a_text_or_a_number() -> None:
    detail = {
        "outcome": "referred_police",
        "note": True,
        "to": "bia",
        "text": "hello",
        "service": "a long free text with spaces",
        "phone": "+258841234567",
        "reference": "258841234567",
        "count": 3,
    }
    assert supervisor.safe_detail(detail) == {
        "outcome": "referred_police",
        "note": True,
        "to": "bia",
        "count": 3,
    }


def test_an_unknown_case_has_no_audit_trail(boss) -> None:
    assert boss.get("/api/supervisor/cases/R999/audit").status_code == 404
    page = boss.get("/supervisor/cases/R999/audit")
    assert page.status_code == 404 and "Case R999 does not exist." in page.text
    assert boss.get("/api/supervisor/cases/nonsense/audit").status_code == 404


def test_the_case_box_leads_to_the_audit_trail(boss) -> None:
    response = boss.get("/supervisor/audit?case= r12 ", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/supervisor/cases/R12/audit"
    assert (
        boss.get("/supervisor/audit?case=nonsense", follow_redirects=False).headers["location"]
        == "/supervisor"
    )


# ---------------------------------------------------------------- accounts


def test_a_supervisor_adds_an_account_and_the_password_is_shown_once(
    app, boss, db: redis.Redis
) -> None:
    page = boss.form(
        "/supervisor/counsellors", {"name": "Carla", "role": "counsellor", "language": "pt"}
    )
    assert page.status_code == 201
    assert page.headers["cache-control"] == "no-store"
    password = text_of(page.text, "new-password")
    assert len(password) >= 12
    assert accounts.get(db, "carla") == accounts.Counsellor("carla", "counsellor", "pt", True)
    assert fresh_login(app, "carla", password) == 303
    # Only the hash is kept: the list page never shows it again.
    listing = boss.get("/supervisor/counsellors").text
    assert password not in listing
    assert 'data-account="carla"' in listing and 'data-testid="accounts-table"' in listing


def test_account_errors_are_shown_clearly(boss, db: redis.Redis) -> None:
    page = boss.form(
        "/supervisor/counsellors", {"name": "x", "role": "counsellor", "language": "en"}
    )
    assert page.status_code == 400
    assert "a name is 2-40 letters" in text_of(page.text, "accounts-problem")
    assert 'value="x"' in page.text  # what was typed stays in the form
    again = boss.form(
        "/supervisor/counsellors", {"name": "sofia", "role": "counsellor", "language": "en"}
    )
    assert again.status_code == 409 and "exists already" in again.text
    assert boss.post("/api/supervisor/counsellors", json={"name": "sofia"}).json() == {
        "detail": "That did not work: an account named sofia exists already",
    }
    assert (
        boss.post("/api/supervisor/counsellors", json={"name": "joao", "role": "boss"}).status_code
        == 422
    )
    assert accounts.get(db, "joao") is None


def test_a_disabled_counsellor_can_no_longer_sign_in_until_enabled(app, boss, sign_in) -> None:
    carla = sign_in("carla", "counsellor")
    response = boss.form("/supervisor/counsellors/carla/disable", follow_redirects=False)
    assert response.status_code == 303
    listing = boss.get(response.headers["location"]).text
    assert "carla&#39;s account is disabled" in listing or "carla's account is disabled" in listing
    # The open session stops working at once, and a new sign-in is refused.
    assert carla.get("/api/supervisor/counsellors").status_code == 401
    assert carla.get("/", follow_redirects=False).status_code in (303, 404)
    assert fresh_login(app, "carla", PASSWORD) == 401

    assert (
        boss.form("/supervisor/counsellors/carla/enable", follow_redirects=False).status_code == 303
    )
    assert fresh_login(app, "carla", PASSWORD) == 303


def test_a_disabled_counsellor_is_no_longer_counted_on_duty(
    boss, db: redis.Redis, sign_in, clock
) -> None:
    sign_in("carla", "counsellor")
    rota.heartbeat(db, "carla", now=NOW)
    assert boss.post("/api/supervisor/counsellors/carla/disable").json()["active"] is False
    assert boss.get("/api/supervisor/dashboard").json()["staffing"]["present"] == []


def test_resetting_a_password_replaces_the_old_one(app, boss, sign_in) -> None:
    sign_in("carla", "counsellor")
    page = boss.form("/supervisor/counsellors/carla/reset-password")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    password = text_of(page.text, "new-password")
    assert fresh_login(app, "carla", PASSWORD) == 401
    assert fresh_login(app, "carla", password) == 303


def test_a_supervisor_cannot_disable_themselves(boss, db: redis.Redis) -> None:
    listing = boss.get("/supervisor/counsellors").text
    assert "/supervisor/counsellors/sofia/disable" not in listing  # no button for it
    page = boss.form("/supervisor/counsellors/sofia/disable")
    assert page.status_code == 400 and "You cannot disable your own account." in page.text
    api = boss.post("/api/supervisor/counsellors/sofia/disable")
    assert api.status_code == 400 and api.json() == {
        "detail": "You cannot disable your own account."
    }
    assert accounts.get(db, "sofia").active


def test_the_accounts_api(app, boss, db: redis.Redis) -> None:
    added = boss.post(
        "/api/supervisor/counsellors", json={"name": "dino", "role": "supervisor", "language": "en"}
    )
    assert added.status_code == 201 and added.headers["cache-control"] == "no-store"
    body = added.json()
    assert body["account"] == {
        "name": "dino",
        "role": "supervisor",
        "language": "en",
        "active": True,
    }
    assert fresh_login(app, "dino", body["password"]) == 303

    listed = boss.get("/api/supervisor/counsellors").json()
    assert [a["name"] for a in listed] == ["dino", "sofia"]

    assert boss.post("/api/supervisor/counsellors/dino/disable").json()["active"] is False
    assert fresh_login(app, "dino", body["password"]) == 401
    assert boss.post("/api/supervisor/counsellors/dino/enable").json()["active"] is True
    reset = boss.post("/api/supervisor/counsellors/dino/reset-password")
    assert reset.status_code == 200 and reset.json()["password"] != body["password"]
    assert fresh_login(app, "dino", reset.json()["password"]) == 303
    assert boss.post("/api/supervisor/counsellors/nobody/disable").status_code == 404
    assert boss.post("/api/supervisor/counsellors/nobody/reset-password").json() == {
        "detail": "There is no account named nobody.",
    }


# ---------------------------------------------------------------- permissions and CSRF


def supervisor_routes(app) -> list[tuple[str, str]]:
    """Every route of the supervisor router (the app nests included routers, so read it there)."""
    routes = []
    for route in supervisor.router.routes:
        if isinstance(route, APIRoute):
            path = route.path.replace("{case_id}", "R1").replace("{name}", "ana")
            routes += [(method, path) for method in sorted(route.methods)]
    return routes


def test_every_supervisor_route_is_known_and_served_by_the_app(app, boss) -> None:
    assert all(
        path.startswith(("/supervisor", "/api/supervisor")) for _, path in supervisor_routes(app)
    )
    assert boss.get("/api/openapi.json").json()["paths"]["/api/supervisor/dashboard"]
    assert set(supervisor_routes(app)) >= {
        ("GET", "/supervisor"),
        ("GET", "/supervisor/cases/R1/audit"),
        ("GET", "/supervisor/counsellors"),
        ("POST", "/supervisor/counsellors"),
        ("POST", "/supervisor/counsellors/ana/disable"),
        ("POST", "/supervisor/counsellors/ana/enable"),
        ("POST", "/supervisor/counsellors/ana/reset-password"),
        ("GET", "/api/supervisor/dashboard"),
        ("GET", "/api/supervisor/cases/R1/audit"),
        ("GET", "/api/supervisor/counsellors"),
        ("POST", "/api/supervisor/counsellors"),
        ("POST", "/api/supervisor/counsellors/ana/disable"),
        ("POST", "/api/supervisor/counsellors/ana/enable"),
        ("POST", "/api/supervisor/counsellors/ana/reset-password"),
    }


def test_a_counsellor_is_refused_every_supervisor_page_and_api(
    app, sign_in, db: redis.Redis
) -> None:
    ana = sign_in("ana", "counsellor")
    sign_in("bia", "counsellor")
    for method, path in supervisor_routes(app):
        if method == "GET":
            response = ana.get(path, follow_redirects=False)
        else:
            response = ana.post(path, json={"name": "eve"}, follow_redirects=False)
        assert response.status_code == 403, (method, path, response.status_code)
        form = (
            ana.form(path, {"name": "eve"}, follow_redirects=False)
            if method == "POST"
            else response
        )
        assert form.status_code == 403, (method, path)
    assert accounts.get(db, "eve") is None
    assert accounts.get(db, "ana").active and accounts.get(db, "bia").active


def test_anonymous_requests_are_sent_to_sign_in_or_refused(app, anonymous: TestClient) -> None:
    for method, path in supervisor_routes(app):
        response = anonymous.request(method, path, follow_redirects=False)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
        else:
            assert response.status_code == 303 and response.headers["location"] == "/login", (
                method,
                path,
            )


def test_every_supervisor_post_needs_the_csrf_token(boss, sign_in, db: redis.Redis) -> None:
    sign_in("carla", "counsellor")
    raw = boss.client
    for path in (
        "/supervisor/counsellors",
        "/supervisor/counsellors/carla/disable",
        "/supervisor/counsellors/carla/reset-password",
    ):
        assert raw.post(path, data={"name": "eve"}).status_code == 403, path
        assert raw.post(path, data={"name": "eve", "csrf_token": "forged"}).status_code == 403, path
    for path in (
        "/api/supervisor/counsellors",
        "/api/supervisor/counsellors/carla/disable",
        "/api/supervisor/counsellors/carla/reset-password",
    ):
        assert raw.post(path, json={"name": "eve"}).status_code == 403, path
        assert (
            raw.post(path, json={"name": "eve"}, headers={"x-csrf-token": "forged"}).status_code
            == 403
        )
    assert accounts.get(db, "eve") is None
    assert accounts.get(db, "carla").active
    assert fresh_login(boss.client.app, "carla", PASSWORD) == 303  # password unchanged


def test_forms_carry_the_csrf_token(boss) -> None:
    html = boss.get("/supervisor/counsellors").text
    forms = re.findall(r'<form method="post".*?</form>', html, re.DOTALL)
    assert forms
    for form in forms:
        assert f'name="csrf_token" value="{boss.csrf}"' in form


# ---------------------------------------------------------------- words


def test_every_code_a_supervisor_page_shows_has_words_in_both_languages() -> None:
    for language in ("pt", "en"):
        words = catalogue(language)
        for outcome in (*OUTCOMES, "open", "unknown"):
            assert words.get(f"outcome_{outcome}"), (language, outcome)
        for action in (
            "opened",
            "retriggered",
            "claimed",
            "transferred",
            "replied",
            "noted",
            "message_received",
            "closed",
            "resumed",
            "erased",
        ):
            assert words.get(f"sv_action_{action}"), (language, action)


def test_a_counsellor_who_opens_a_supervisor_page_is_told_so_on_a_page(sign_in) -> None:
    ana = sign_in("ana", "counsellor", language="en")
    page = ana.get("/supervisor")
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-testid="problem"' in page.text and "for supervisors" in page.text
    assert 'href="/static/console.css"' in page.text  # styled like every console page
    # The JSON API keeps JSON.
    api = ana.get("/api/supervisor/dashboard")
    assert api.status_code == 403 and api.headers["content-type"] == "application/json"
    assert api.json()["detail"]

    paula = sign_in("paula", "counsellor", language="pt")
    assert "para supervisores" in paula.get("/supervisor/counsellors").text


def test_the_audit_trail_shows_the_trigger_in_words(boss, referrals: Referrals) -> None:
    case_id = referrals.open_case(
        "c1",
        priority="request",
        channel="sms",
        language="pt",
        risk_level="none",
        consent="requested",
        trigger="request_human",
    ).case_id
    html = boss.get(f"/supervisor/cases/{case_id}/audit").text
    assert "asked for a counsellor" in html and "request_human" not in html
