"""The console app against the real test Redis, and signed-in clients for each role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from hotline import conversations, ids
from hotline.rasa import RasaClient
from hotline.settings import Settings
from referral import accounts
from referral.console import events
from referral.console.deps import rasa_dep, settings_dep
from referral.console.main import create_app
from referral.queue import Referrals

PASSWORD = "a long test password"
NUMBER = "+258841234567"


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Rasa is not running in these tests")


@pytest.fixture
def app(db: redis.Redis, settings: Settings):
    app = create_app()
    app.dependency_overrides[settings_dep] = lambda: settings

    # Rasa is not running here: nothing the console does may need it (closing hands back
    # without it).
    async def rasa_down():
        client = RasaClient(
            settings, client=httpx.AsyncClient(transport=httpx.MockTransport(_unreachable))
        )
        try:
            yield client
        finally:
            await client.aclose()

    app.dependency_overrides[rasa_dep] = rasa_down
    # Event streams end quickly, so a test that reads one never waits long.
    app.dependency_overrides[events.timing_dep] = lambda: events.Timing(
        block_ms=200, lifetime_seconds=3
    )
    return app


class Signed:
    """A test client signed in as one counsellor; `csrf` is the session's token."""

    def __init__(self, client: TestClient, name: str, csrf: str) -> None:
        self.client, self.name, self.csrf = client, name, csrf

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url: str, **kwargs):
        headers = {"x-csrf-token": self.csrf, **kwargs.pop("headers", {})}
        return self.client.post(url, headers=headers, **kwargs)

    def form(self, url: str, data: dict[str, str] | None = None, **kwargs):
        """A form post as the browser sends it, with the token as a field."""
        return self.client.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)


@pytest.fixture
def sign_in(app, db: redis.Redis) -> Iterator[Callable[..., Signed]]:
    clients: list[TestClient] = []

    def make(name: str = "ana", role: str = "counsellor", language: str = "en") -> Signed:
        if accounts.get(db, name) is None:
            accounts.add(db, name, role, PASSWORD, language=language)
        client = TestClient(app, base_url="http://testserver")
        clients.append(client)
        response = client.post(
            "/login", data={"name": name, "password": PASSWORD}, follow_redirects=False
        )
        assert response.status_code == 303, response.text
        csrf = client.get("/api/me").json()["csrf_token"]
        return Signed(client, name, csrf)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def anonymous(app) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def csrf_in(html: str) -> str | None:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return match.group(1) if match else None


DISCLOSURE = "They took my passport and I am not free to leave the farm"


@pytest.fixture
def open_case(db: redis.Redis, settings: Settings) -> Callable[..., str]:
    """Opens a case the way the action server does, for a person who wrote from NUMBER."""
    referrals = Referrals(db)
    counter = iter(range(1, 1000))

    def make(
        priority: str = "high",
        channel: str = "whatsapp",
        language: str = "en",
        text: str = DISCLOSURE,
        at: float | None = None,
        number: str = NUMBER,
    ) -> str:
        cid = f"c{next(counter):031d}"
        address = f"whatsapp:{number}" if channel == "whatsapp" else number
        conversations.remember(
            db,
            cid,
            channel=channel,  # type: ignore[arg-type]
            sealed_address=ids.seal(address, settings.fernet_key.get_secret_value()),
        )
        start = at if at is not None else referrals.clock() - 60
        return referrals.open_case(
            cid,
            priority=priority,
            channel=channel,
            language=language,  # type: ignore[arg-type]
            risk_level="emergency" if priority == "emergency" else "high",
            indicators=[
                {"name": "documents_confiscated", "message_index": 1, "phrase": "took my passport"},
                {"name": "not_free_to_leave", "message_index": 1, "phrase": "not free to leave"},
            ],
            summary="passport taken; not free to leave",
            consent="given",
            trigger="report_exploitation",
            transcript=[
                (start, "person", "hello"),
                (start + 1, "bot", "Hello! How can I help?"),
                (start + 2, "person", text),
                (start + 3, "bot", "Thank you for telling me."),
            ],
        ).case_id

    return make
