"""The sandbox answers the real twilio client like Twilio, and its phone page reaches the gateway."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from channels.sandbox.app import create_app
from channels.sender import twilio_client
from hotline import keys
from hotline.conversations import INBOUND_STREAM
from hotline.settings import Settings, UnsafeSettings
from tests.channels.conftest import Servers

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def test_create_list_and_fetch_with_the_real_client(servers: Servers) -> None:
    client = twilio_client(servers.settings)
    sms_from = servers.settings.twilio_sms_from
    first = client.messages.create(to="+258840000501", from_=sms_from, body="Olá")
    client.messages.create(to="+258840000502", from_=sms_from, body="Olá de novo")
    client.messages.create(
        to="whatsapp:+258840000501", from_=servers.settings.twilio_whatsapp_from, body="Hi"
    )

    assert first.sid.startswith("SM") and first.status == "queued" and first.num_segments == "1"
    assert [m.body for m in client.messages.list(to="+258840000501")] == ["Olá"]
    assert len(client.messages.list(from_=sms_from)) == 2
    assert client.messages(first.sid).fetch().to == "+258840000501"


def test_the_list_filters_by_sent_date_like_twilio(servers: Servers) -> None:
    """A message not sent yet has no sent date, so a DateSent filter never finds it: the
    sender's reconciliation filters on To and From only, and reads date_created itself."""
    from datetime import UTC, datetime, timedelta

    client = twilio_client(servers.settings)
    sms_from = servers.settings.twilio_sms_from
    sent = client.messages.create(to="+258840000511", from_=sms_from, body="Ola")
    wait = time.monotonic() + 5
    while client.messages(sent.sid).fetch().date_sent is None and time.monotonic() < wait:
        time.sleep(0.02)
    now = datetime.now(UTC)
    after = client.messages.list(to="+258840000511", date_sent_after=now - timedelta(minutes=1))
    before = client.messages.list(to="+258840000511", date_sent_before=now - timedelta(days=1))
    today = client.messages.list(to="+258840000511", date_sent=now)
    assert [m.sid for m in after] == [sent.sid] == [m.sid for m in today] and before == []
    newest = client.messages.list(to="+258840000511", from_=sms_from, limit=5, page_size=5)
    assert newest[0].date_created is not None and newest[0].body == "Ola"


def test_a_slow_answer_comes_after_the_message_is_stored(servers: Servers) -> None:
    """The sandbox's slow control: the phone has the message before the sender hears back,
    which is when a crash of the sender loses track of it."""
    httpx.post(servers.sandbox_url + "/sandbox/slow", json={"seconds": 1.0, "count": 1, "skip": 1})
    client = twilio_client(servers.settings)
    sms_from = servers.settings.twilio_sms_from
    started = time.monotonic()
    client.messages.create(to="+258840000512", from_=sms_from, body="first, at once")
    assert time.monotonic() - started < 0.8
    client.messages.create(to="+258840000512", from_=sms_from, body="second, slowly")
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    client.messages.create(to="+258840000512", from_=sms_from, body="third, at once")
    assert time.monotonic() - started < 0.8


@pytest.mark.parametrize(
    ("to", "body", "code"),
    [
        ("not-a-number", "hi", 21211),
        ("+15005550009", "hi", 21614),
        ("+15005550004", "hi", 21610),
        ("+258840000503", "", 21602),
        ("+258840000503", "x" * 1601, 21617),
    ],
)
def test_errors_come_back_as_twilio_errors(servers: Servers, to: str, body: str, code: int) -> None:
    with pytest.raises(TwilioRestException) as error:
        twilio_client(servers.settings).messages.create(to=to, from_="+15005550006", body=body)
    assert error.value.code == code and error.value.status == 400


def test_a_wrong_auth_token_is_refused(servers: Servers) -> None:
    client = Client(servers.settings.twilio_sid, "wrong-token")
    client.api.base_url = servers.sandbox_url
    with pytest.raises(TwilioRestException) as error:
        client.messages.create(to="+258840000501", from_="+15005550006", body="hi")
    assert error.value.status == 401


def test_the_phone_page_posts_a_signed_webhook(servers: Servers, db: redis.Redis) -> None:
    page = httpx.get(servers.sandbox_url + "/")
    assert page.status_code == 200 and "WhatsApp" in page.text and "/phone/send" in page.text
    sent = httpx.post(
        servers.sandbox_url + "/phone/send",
        json={"channel": "whatsapp", "number": "+258 84 000 0504", "body": "Olá"},
    ).json()
    assert sent["webhook_status"] == 200  # the gateway checked the signature and took it
    assert db.xlen(INBOUND_STREAM) == 1
    photo = httpx.post(
        servers.sandbox_url + "/phone/send",
        json={"channel": "sms", "number": "+258840000504", "media": True},
    ).json()
    assert photo["webhook_status"] == 200
    thread = httpx.post(
        servers.sandbox_url + "/phone/thread",
        json={"channel": "whatsapp", "number": "+258840000504"},
    ).json()["messages"]
    assert [(m["direction"], m["body"]) for m in thread] == [("in", "Olá")]


def test_healthz(servers: Servers) -> None:
    gateway = httpx.get(servers.gateway_url + "/healthz").json()
    # No Rasa in this test, and no supervisor's record of the other processes. (The gateway
    # may say more, such as its backlog; these are the parts this test is about.)
    assert {k: gateway[k] for k in ("status", "redis", "rasa", "down", "unstable")} == {
        "status": "degraded",
        "redis": True,
        "rasa": False,
        "down": ["rasa"],
        "unstable": [],
    }
    assert httpx.get(servers.sandbox_url + "/healthz").json()["redis"] is True


def test_healthz_says_which_process_is_down(servers: Servers, db) -> None:
    db.hset(
        keys.SUPERVISION_KEY,
        mapping={"worker": "BACKOFF", "sender": "RUNNING", "console": "FLAPPING"},
    )
    gateway = httpx.get(servers.gateway_url + "/healthz").json()
    assert gateway["down"] == ["rasa", "worker"] and gateway["unstable"] == ["console"]


def _start(settings: Settings) -> str:
    """'started', or why the sandbox refused to start (uvicorn runs the same lifespan)."""
    try:
        with TestClient(create_app(settings)) as client:
            return "started" if client.get("/healthz").status_code == 200 else "unhealthy"
    except UnsafeSettings as refusal:
        return str(refusal)


def test_the_sandbox_refuses_to_start_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_SECRETS", raising=False)
    production = Settings(
        HOTLINE_ENV="prod",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        HOTLINE_SECRET=secrets.token_urlsafe(32),
        HOTLINE_FERNET_KEY=Fernet.generate_key().decode(),
        TWILIO_AUTH_TOKEN=secrets.token_hex(16),
        RASA_TOKEN=secrets.token_urlsafe(24),
        HOTLINE_ACTION_TOKEN=secrets.token_urlsafe(24),
    )
    assert "runs only in dev mode" in _start(production)
    # Settings refuse a Twilio account outside production; the sandbox checks again itself.
    for env in ("dev", "test"):
        assert "runs only in dev mode" in _start(
            Settings.model_construct(**{**production.__dict__, "env": env})
        )


def test_the_sandbox_starts_in_dev_only_with_its_token(settings_factory) -> None:
    assert _start(settings_factory()) == "started"  # the test suite
    dev = settings_factory(HOTLINE_ENV="dev", RASA_TOKEN=secrets.token_urlsafe(24))
    assert _start(dev) == "started"
    tokenless = dev.model_copy(update={"twilio_auth_token": SecretStr("")})
    assert "TWILIO_AUTH_TOKEN is empty" in _start(tokenless)
