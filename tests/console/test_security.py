"""The console's guards: sessions that end, resets that end them, who reads closed cases, the
audit of accounts and reads, and the headers every page carries."""

from __future__ import annotations

import hashlib
import re
import secrets

import pytest
import redis
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from hotline.settings import Settings, UnsafeSettings
from referral import accounts
from referral.console import deps, events, sessions, trail
from referral.console.main import create_app
from referral.queue import Referrals

from .conftest import PASSWORD

MINUTE = 60.0
START = 1_800_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session_clock(app) -> Clock:
    """The sessions' clock, fixed: asked for before `sign_in`, so sign-ins are on it too."""
    fixed = Clock(START)
    app.dependency_overrides[deps.session_clock_dep] = lambda: fixed
    return fixed


def signed_in(response) -> bool:
    return response.status_code == 200


# ---------------------------------------------------------------- idle timer and lifetime


def test_a_session_expires_while_its_page_sends_heartbeats(
    app, session_clock: Clock, sign_in, open_case
) -> None:
    app.dependency_overrides[events.timing_dep] = lambda: events.Timing(
        block_ms=50, lifetime_seconds=0.1
    )
    case_id = open_case()
    ana = sign_in("ana")
    # What an open page does by itself, every few minutes: presence, the event stream, the
    # fragments it refetches, the dashboard's marked refresh.
    for _ in range(2):
        session_clock.now += 14 * MINUTE
        assert ana.post("/heartbeat").status_code == 204
        assert ana.post("/api/heartbeat").status_code == 204
        assert ana.get("/events").status_code == 200
        assert ana.get("/queue/rows").status_code == 200
        assert ana.get(f"/cases/{case_id}/transcript").status_code == 200
        assert ana.get("/", headers={"x-hotline-background": "1"}).status_code == 200

    session_clock.now += 2 * MINUTE + 1  # 30 minutes since ana last did anything herself

    assert ana.post("/api/heartbeat").status_code == 401
    beat = ana.post("/heartbeat", follow_redirects=False)  # the page's script follows it to /login
    assert beat.status_code == 303 and beat.headers["location"] == "/login"
    page = ana.get(f"/cases/{case_id}", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"


def test_the_counsellors_own_requests_keep_the_session_until_its_lifetime(
    session_clock: Clock, sign_in
) -> None:
    ana = sign_in("ana")
    for _ in range(35):  # 11 h 40 min of work, one request every 20 min
        session_clock.now += 20 * MINUTE
        assert signed_in(ana.get("/", follow_redirects=False))
    session_clock.now += 20 * MINUTE  # 12 h after signing in, however busy

    assert ana.get("/api/me").status_code == 401


def test_idle_means_idle_for_pages_too(session_clock: Clock, sign_in) -> None:
    ana = sign_in("ana")
    session_clock.now += 29 * MINUTE
    assert signed_in(ana.get("/", follow_redirects=False))  # her own request: the timer restarts
    session_clock.now += 29 * MINUTE
    assert signed_in(ana.get("/", follow_redirects=False))
    session_clock.now += 30 * MINUTE
    assert ana.get("/", follow_redirects=False).headers["location"] == "/login"


# ---------------------------------------------------------------- how sessions are kept


def test_redis_keeps_a_hash_of_the_session_token_never_the_token(
    app, db: redis.Redis, sign_in
) -> None:
    ana = sign_in("ana")
    token = ana.client.cookies.get(sessions.COOKIE)
    assert token and len(token) >= 40

    assert db.exists(f"hotline:session:{hashlib.sha256(token.encode()).hexdigest()}")
    for key in db.scan_iter("*"):
        assert token not in key
        if db.type(key) == "hash":
            assert token not in "".join(db.hvals(key))
    # Knowing the key in Redis is no cookie.
    stolen = TestClient(app, cookies={sessions.COOKIE: hashlib.sha256(token.encode()).hexdigest()})
    assert stolen.get("/api/me").status_code == 401


def test_signing_in_again_ends_the_session_the_browser_carried(db: redis.Redis, sign_in) -> None:
    ana = sign_in("ana")
    before = ana.client.cookies.get(sessions.COOKIE)
    again = ana.client.post(
        "/login", data={"name": "ana", "password": PASSWORD}, follow_redirects=False
    )
    assert again.status_code == 303
    assert ana.client.cookies.get(sessions.COOKIE) != before
    assert not db.exists(f"hotline:session:{hashlib.sha256(before.encode()).hexdigest()}")


@pytest.mark.parametrize("how", ["form", "api"])
def test_a_password_reset_ends_every_session_of_that_account(sign_in, how: str) -> None:
    boss = sign_in("sofia", "supervisor")
    carla_at_work, carla_at_home = sign_in("carla"), sign_in("carla")
    ana = sign_in("ana")
    assert (
        carla_at_work.get("/api/me").status_code == carla_at_home.get("/api/me").status_code == 200
    )

    if how == "form":
        assert boss.form("/supervisor/counsellors/carla/reset-password").status_code == 200
    else:
        assert boss.post("/api/supervisor/counsellors/carla/reset-password").status_code == 200

    assert carla_at_work.get("/api/me").status_code == 401
    assert carla_at_home.get("/", follow_redirects=False).headers["location"] == "/login"
    assert ana.get("/api/me").status_code == 200 and boss.get("/api/me").status_code == 200


def test_disabling_ends_the_sessions_and_enabling_does_not_bring_them_back(sign_in) -> None:
    boss, carla = sign_in("sofia", "supervisor"), sign_in("carla")
    assert boss.post("/api/supervisor/counsellors/carla/disable").status_code == 200
    assert boss.post("/api/supervisor/counsellors/carla/enable").status_code == 200
    assert carla.get("/api/me").status_code == 401


# ---------------------------------------------------------------- who reads a closed case


@pytest.fixture
def bobs_closed_case(sign_in, open_case) -> str:
    case_id = open_case()
    bob = sign_in("bob")
    assert bob.post(f"/api/cases/{case_id}/claim").status_code == 200
    assert (
        bob.post(f"/api/cases/{case_id}/close", json={"outcome": "referred_shelter"}).status_code
        == 200
    )
    return case_id


def test_a_counsellor_gets_403_on_another_counsellors_closed_case(
    sign_in, bobs_closed_case: str
) -> None:
    case_id = bobs_closed_case
    ana = sign_in("ana")

    api = ana.get(f"/api/cases/{case_id}")
    assert api.status_code == 403 and api.json()["error"] == "not_your_case"
    assert "transcript" not in api.json()
    for path in (
        f"/cases/{case_id}",
        f"/cases/{case_id}/transcript",
        f"/cases/{case_id}/services?province=Maputo Cidade",
    ):
        page = ana.get(path)
        assert page.status_code == 403, path
        assert "not free to leave" not in page.text, path

    # Who held it, and supervisors, still read it.
    assert sign_in("bob").get(f"/api/cases/{case_id}").status_code == 200
    assert sign_in("sofia", "supervisor").get(f"/cases/{case_id}").status_code == 200


def test_an_open_case_stays_readable_by_every_counsellor(sign_in, open_case) -> None:
    case_id = open_case()
    assert sign_in("bob").post(f"/api/cases/{case_id}/claim").status_code == 200
    assert sign_in("ana").get(f"/api/cases/{case_id}").status_code == 200


# ---------------------------------------------------------------- the audit trail


def _readings(db: redis.Redis, case_id: str) -> list[str]:
    return [event.actor for event in Referrals(db).audit(case_id) if event.action == "viewed"]


def test_reading_a_case_is_in_its_audit_trail(
    sign_in, open_case, db: redis.Redis, bobs_closed_case: str
) -> None:
    case_id = open_case(number="+258841230000")
    ana, sara = sign_in("ana"), sign_in("sara", "supervisor")

    assert ana.get(f"/cases/{case_id}").status_code == 200
    assert ana.get(f"/cases/{case_id}/transcript").status_code == 200  # the same reading
    assert sara.get(f"/api/cases/{case_id}").status_code == 200
    assert _readings(db, case_id) == ["ana", "sara"]

    # A refused reading reads nothing, so it is not a reading.
    before = _readings(db, bobs_closed_case)
    assert ana.get(f"/api/cases/{bobs_closed_case}").status_code == 403
    assert _readings(db, bobs_closed_case) == before
    # The supervisor's trail page names the reading.
    trail_page = sara.get(f"/supervisor/cases/{case_id}/audit").text
    assert 'data-action="viewed"' in trail_page


def _account_events(boss) -> list[tuple[str, str, str, str]]:
    found = boss.get("/api/supervisor/accounts/audit").json()["events"]
    return [
        (e["action"], e["actor"], e["detail"]["account"], e["detail"].get("reason", ""))
        for e in found
    ]


def fresh_login(app, name: str, password: str) -> int:
    with TestClient(app) as client:
        return client.post(
            "/login", data={"name": name, "password": password}, follow_redirects=False
        ).status_code


def test_account_changes_sign_ins_and_lockouts_are_in_the_trail(
    app, sign_in, db: redis.Redis
) -> None:
    boss = sign_in("sofia", "supervisor")
    password = boss.post("/api/supervisor/counsellors", json={"name": "carla"}).json()["password"]
    assert fresh_login(app, "carla", password) == 303
    boss.post("/api/supervisor/counsellors/carla/disable")
    boss.post("/api/supervisor/counsellors/carla/enable")
    boss.post("/api/supervisor/counsellors/carla/reset-password")
    for _ in range(accounts.MAX_FAILURES):
        assert fresh_login(app, "carla", "a wrong password!") == 401
    assert fresh_login(app, "carla", "a wrong password!") == 401  # locked now
    typed = "my-password-in-the-name-box"
    assert fresh_login(app, typed, PASSWORD) == 401

    events = _account_events(boss)[::-1]  # oldest first
    assert events[:7] == [
        ("signed_in", "sofia", "sofia", ""),
        ("account_added", "sofia", "carla", ""),
        ("signed_in", "carla", "carla", ""),
        ("account_disabled", "sofia", "carla", ""),
        ("account_enabled", "sofia", "carla", ""),
        ("password_reset", "sofia", "carla", ""),
        ("sign_in_refused", "carla", "carla", "refused"),
    ]
    assert events[7:] == [
        *[("sign_in_refused", "carla", "carla", "refused")] * (accounts.MAX_FAILURES - 1),
        ("locked_out", "carla", "carla", ""),
        ("sign_in_refused", "carla", "carla", "locked"),
        ("sign_in_refused", trail.UNKNOWN, trail.UNKNOWN, "refused"),
    ]
    # What someone typed as a name is never kept: it may be a password.
    assert not any(typed in str(fields) for _, fields in db.xrange(trail.ACCOUNT_TRAIL))
    assert (
        boss.get("/api/supervisor/accounts/audit?account=carla&limit=2").json()["events"][0][
            "action"
        ]
        == "sign_in_refused"
    )


def test_signing_out_is_in_the_trail(sign_in) -> None:
    ana, boss = sign_in("ana"), sign_in("sofia", "supervisor")
    assert ana.form("/logout", follow_redirects=False).status_code == 303
    assert ("signed_out", "ana", "ana", "") in _account_events(boss)


# ---------------------------------------------------------------- headers


def _assert_guarded(response, path: str, authenticated: bool = True) -> None:
    headers = response.headers
    policy = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, path
    assert "unsafe-inline" not in policy, path
    assert headers.get("x-content-type-options") == "nosniff", path
    assert headers.get("referrer-policy") == "same-origin", path
    if authenticated:
        assert headers.get("cache-control") == "no-store", path


def test_every_page_carries_the_security_headers(sign_in, open_case, anonymous) -> None:
    case_id = open_case()
    sofia = sign_in("sofia", "supervisor")
    pages = [
        "/",
        f"/cases/{case_id}",
        f"/cases/{case_id}/transcript",
        "/supervisor",
        "/supervisor/counsellors",
        f"/supervisor/cases/{case_id}/audit",
        "/api/docs",
        f"/api/cases/{case_id}",
        "/api/queue",
        "/no-such-page",
    ]
    for path in pages:
        response = sofia.get(path)
        _assert_guarded(response, path)
        if response.headers["content-type"].startswith("text/html"):
            # The policy allows no inline script, style or handler: the pages must not need one.
            assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), path
            assert not re.search(r"""\s(style|on[a-z]+)\s*=\s*["']""", response.text), path
    assert sign_in("ana").get("/supervisor").status_code == 403
    _assert_guarded(sign_in("ana").get("/supervisor"), "/supervisor as a counsellor")
    _assert_guarded(anonymous.get("/login"), "/login")
    _assert_guarded(anonymous.get("/", follow_redirects=False), "/ signed out")
    static = anonymous.get("/static/console.css")
    _assert_guarded(static, "/static/console.css", authenticated=False)
    assert static.headers.get("cache-control") != "no-store"  # the stylesheet holds no case


def test_a_failure_is_answered_with_the_security_headers_too(app) -> None:
    """A bug's 500 comes from Starlette's outermost middleware, past SecurityHeaders."""

    @app.get("/fails")
    def fails() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/fails")
    assert response.status_code == 500 and "a bug" not in response.text
    _assert_guarded(response, "/fails")


def test_signing_out_leaves_nothing_to_go_back_to(sign_in, open_case) -> None:
    case_id = open_case()
    ana = sign_in("ana")
    assert ana.get(f"/cases/{case_id}").headers["cache-control"] == "no-store"
    out = ana.form("/logout", follow_redirects=False)
    assert out.headers["clear-site-data"] == '"cache"'
    assert ana.get(f"/cases/{case_id}", follow_redirects=False).headers["location"] == "/login"


# ---------------------------------------------------------------- start-up


def test_the_console_refuses_to_start_without_its_secrets(app, settings: Settings) -> None:
    dev = Settings(
        HOTLINE_ENV="dev",
        REDIS_URL=settings.redis_url,
        HOTLINE_FERNET_KEY=Fernet.generate_key().decode(),
    )
    app.dependency_overrides[deps.settings_dep] = lambda: dev
    refused = pytest.raises(
        UnsafeSettings, match="console process refuses to start: RASA_TOKEN is empty"
    )
    with refused, TestClient(app):
        pass

    ready = dev.model_copy(update={"rasa_token": type(dev.rasa_token)(secrets.token_urlsafe(24))})
    app.dependency_overrides[deps.settings_dep] = lambda: ready
    with TestClient(app) as client:
        assert client.get("/login").status_code == 200


def test_a_fresh_app_is_the_one_under_test() -> None:
    # The app factory itself installs the guards, not only the test fixture.
    assert any(m.cls.__name__ == "SecurityHeaders" for m in create_app().user_middleware)
