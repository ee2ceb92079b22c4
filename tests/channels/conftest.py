"""The channel's test bench: the real gateway and sandbox on loopback ports, a phone that
signs webhooks like Twilio, and a Rasa stand-in behind an injected HTTP transport.

Nothing leaves the machine: any connection to a non-loopback address fails the test.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis
import uvicorn

from channels import gateway
from channels.sandbox import app as sandbox
from channels.sender import Sender
from channels.twilio_adapter import sign
from channels.worker import Worker
from hotline.rasa import RasaClient
from hotline.settings import Settings
from ops import processes
from tests.conftest import AUTH_TOKEN, FERNET_KEY, SECRET

# What the Rasa stand-in answers, by the language the worker sent in the metadata.
BOT_REPLY = {
    "pt": "Olá! Posso ajudar com regresso, documentos e proteção.",
    "en": "Hello! I can help with return, documents and protection.",
    "fr": "Bonjour ! Je peux aider pour le retour, les documents et la protection.",
    "sw": "Habari! Ninaweza kusaidia kuhusu kurudi, nyaraka na ulinzi.",
}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A transport that fails any call leaving the host."""
    original = socket.socket.connect
    original_ex = socket.socket.connect_ex

    def allowed(address: Any) -> bool:
        if not isinstance(address, tuple):
            return True  # unix sockets
        host = address[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def connect(self: socket.socket, address: Any) -> Any:
        if not allowed(address):
            raise AssertionError(f"test tried to reach {address!r}: only loopback is allowed")
        return original(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if not allowed(address):
            raise AssertionError(f"test tried to reach {address!r}: only loopback is allowed")
        return original_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


class ServerThread:
    """An ASGI app served by uvicorn on a loopback port, in a thread of the test process."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Servers:
    settings: Settings
    gateway_url: str
    sandbox_url: str


@pytest.fixture(scope="session")
def channel_servers(settings_factory) -> Iterator[Servers]:
    """The gateway and the sandbox, wired to each other as `make run` wires them."""
    gateway_port, sandbox_port = processes.free_port(), processes.free_port()
    settings = settings_factory(
        PUBLIC_URL=f"http://127.0.0.1:{gateway_port}",
        SANDBOX_URL=f"http://127.0.0.1:{sandbox_port}",
        # The Rasa stand-in needs no token; a token would only show up in httpx's URLs.
        RASA_TOKEN="",
        RASA_URL="http://127.0.0.1:9",
    )
    servers = [
        ServerThread(gateway.create_app(settings), gateway_port),
        ServerThread(sandbox.create_app(settings), sandbox_port),
    ]
    for server in servers:
        server.start()
    yield Servers(settings, servers[0].url, servers[1].url)
    for server in servers:
        server.stop()


class FakeRasa:
    """Rasa's REST channel and tracker endpoint, answering in the language it is told."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.down = False
        self.replies: Callable[[dict[str, Any]], list[str]] | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("Rasa is down", request=request)
        if request.url.path == "/webhooks/rest/webhook":
            body = json.loads(request.content)
            self.seen.append(body)
            texts = (
                self.replies(body) if self.replies else [BOT_REPLY[body["metadata"]["language"]]]
            )
            return httpx.Response(
                200, json=[{"recipient_id": body["sender"], "text": t} for t in texts]
            )
        if request.url.path.endswith("/tracker"):
            return httpx.Response(200, json={"events": []})
        return httpx.Response(200, json={})

    def client(self, settings: Settings) -> RasaClient:
        return RasaClient(
            settings, client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        )

    @property
    def texts(self) -> list[str]:
        return [body["message"] for body in self.seen]


@dataclass
class Phone:
    """A person's phone: signs and posts webhooks like Twilio, reads what came back."""

    servers: Servers
    number: str = "+258840000001"
    channel: str = "sms"
    posted: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"whatsapp:{self.number}" if self.channel == "whatsapp" else self.number

    def form(self, body: str, sid: str | None = None, media: int = 0) -> dict[str, str]:
        sid = sid or "SM" + uuid.uuid4().hex
        settings = self.servers.settings
        to = (
            settings.twilio_whatsapp_from
            if self.channel == "whatsapp"
            else settings.twilio_sms_from
        )
        form = {
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "AccountSid": settings.twilio_sid,
            "From": self.address,
            "To": to,
            "Body": body,
            "NumMedia": str(media),
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        if self.channel == "whatsapp":
            form |= {"ProfileName": "Amina", "WaId": self.number.lstrip("+")}
        if media:
            form |= {"MediaUrl0": "http://127.0.0.1:9/photo.jpg", "MediaContentType0": "image/jpeg"}
        return form

    def post(
        self,
        form: dict[str, str],
        *,
        signature: str | None = "valid",
        token: str | None = None,
        path: str = "/twilio/messages",
        raw: bytes | None = None,
    ) -> httpx.Response:
        url = self.servers.settings.public_url + path
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "valid":
            headers["X-Twilio-Signature"] = sign(AUTH_TOKEN, url, form)
        elif signature == "bad":
            headers["X-Twilio-Signature"] = sign("not-the-auth-token", url, form)
        if token:
            headers["I-Twilio-Idempotency-Token"] = token
        body = raw if raw is not None else urlencode(form).encode()
        self.posted.append(form.get("Body", ""))
        return httpx.post(url, content=body, headers=headers, timeout=10)

    def send(self, body: str, **options: Any) -> httpx.Response:
        return self.post(self.form(body), **options)

    def received(self) -> list[str]:
        """The bodies the sandbox delivered to this phone, oldest first."""
        thread = httpx.post(
            self.servers.sandbox_url + "/phone/thread",
            json={"channel": self.channel, "number": self.number},
            timeout=10,
        ).json()["messages"]
        return [m["body"] for m in thread if m["direction"] == "out"]


def run_worker(settings: Settings, rasa: FakeRasa | RasaClient, **options: Any) -> None:
    client = rasa.client(settings) if isinstance(rasa, FakeRasa) else rasa
    timeout = options.pop("timeout", 30.0)
    worker = Worker(settings, rasa=client, **{"claim_idle": 2.0, "block_ms": 50, **options})

    async def go() -> None:
        try:
            await worker.run_until_idle(timeout=timeout)
        finally:
            await client.aclose()

    asyncio.run(go())
    worker.close()


def run_sender(settings: Settings, **options: Any) -> None:
    sender = Sender(settings, claim_idle=2.0, block_ms=50, **options)
    asyncio.run(sender.run_until_idle(timeout=60))
    sender.close()


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture
def servers(channel_servers: Servers, db: redis.Redis) -> Servers:
    """The servers over a freshly emptied Redis."""
    return channel_servers


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment `make run` gives the channel's processes, for these settings."""
    import os

    from hotline.settings import PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_ACCOUNT")}
    env |= {
        "PYTHONPATH": str(PROJECT_ROOT),
        "HOTLINE_ENV": "test",
        "REDIS_URL": settings.redis_url,
        "HOTLINE_SECRET": SECRET,
        "HOTLINE_FERNET_KEY": FERNET_KEY,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "RASA_URL": settings.rasa_url,
        "RASA_TOKEN": settings.rasa_token.get_secret_value(),
        "PUBLIC_URL": settings.public_url,
        "SANDBOX_URL": settings.sandbox_url,
        "HOTLINE_CLAIM_IDLE": "2",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    return env | extra


class ChannelProcess:
    """`python -m channels.worker` or `channels.sender`, as the launcher runs them."""

    def __init__(self, module: str, env: dict[str, str], log_dir) -> None:
        self.module, self.env = module, env
        self.log = log_dir / f"{module}.log"
        self.process = None

    def start(self) -> ChannelProcess:
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        """A crash: no chance to finish anything."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> int | None:
        """SIGTERM, as a supervisor stops it: the message in hand is finished first."""
        import subprocess

        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def e2e_settings(rasa_stack, servers: Servers, settings_factory) -> Settings:
    """Settings for the channel's processes in front of the real Rasa and action servers."""
    return settings_factory(
        RASA_URL=rasa_stack["rasa_url"],
        PUBLIC_URL=servers.gateway_url,
        SANDBOX_URL=servers.sandbox_url,
    )
