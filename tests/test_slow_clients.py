"""A body that trickles in is cut off: the gateway and the console, served by uvicorn as
`make run` serves them, answer 408 and close; a body that arrives in time is read."""

from __future__ import annotations

import socket
import time

import pytest

from channels import gateway
from hotline import slow_clients
from ops import processes
from referral.console.deps import settings_dep
from referral.console.main import create_app as console_app
from tests.channels.conftest import ServerThread

DEADLINE = 0.5


def _post(
    port: int, path: str, pieces: list[bytes], pause: float, length: int
) -> tuple[bytes, float]:
    """Headers, then the body in pieces `pause` seconds apart; what came back and when."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        for piece in pieces:
            conn.sendall(piece)
            time.sleep(pause)
        answer = b""
        while chunk := conn.recv(4096):  # the server closes: the connection is not held
            answer += chunk
    return answer, time.monotonic() - started


@pytest.fixture
def servers(settings_factory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(slow_clients, "BODY_SECONDS", DEADLINE)
    settings = settings_factory()
    console = console_app()
    console.dependency_overrides[settings_dep] = lambda: settings
    running = {
        "gateway": ServerThread(gateway.create_app(settings), processes.free_port()),
        "console": ServerThread(console, processes.free_port()),
    }
    for server in running.values():
        server.start()
    yield {name: int(server.url.rsplit(":", 1)[1]) for name, server in running.items()}
    for server in running.values():
        server.stop()


@pytest.mark.parametrize(
    ("service", "path"), [("gateway", "/twilio/messages"), ("console", "/login")]
)
def test_a_body_that_never_finishes_is_answered_408_and_the_connection_closed(
    servers: dict[str, int], service: str, path: str
) -> None:
    answer, seconds = _post(servers[service], path, [b"Body=socorro"], pause=0, length=500)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert seconds < DEADLINE + 3


@pytest.mark.parametrize(
    ("service", "path"), [("gateway", "/twilio/messages"), ("console", "/login")]
)
def test_a_body_sent_slowly_but_in_time_is_read(
    servers: dict[str, int], service: str, path: str
) -> None:
    body = b"Body=ola&From=%2B258840000971"
    pieces = [body[:10], body[10:20], body[20:]]
    answer, _ = _post(servers[service], path, pieces, pause=DEADLINE / 10, length=len(body))
    # Read whole and judged by the app: the gateway refuses the unsigned webhook, the console
    # the form without a session; neither is cut short.
    status = answer.split(b"\r\n", 1)[0]
    assert b" 408" not in status and status.startswith(b"HTTP/1.1 "), answer[:200]
