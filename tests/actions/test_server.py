"""Only Rasa may run actions, and no body can exhaust the action server (issue 13, finding 6)."""

from __future__ import annotations

import json
import os
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hotline.settings import PROJECT_ROOT
from ops import processes
from tests.conftest import ACTION_TOKEN

# What Rasa sends to run an action: the services list for a question about a shelter.
CALL = {
    "next_action": "action_list_services",
    "sender_id": "c-server-test",
    "version": "3.6.0",
    "tracker": {
        "sender_id": "c-server-test",
        "events": [],
        "slots": {"language": "en"},
        "latest_message": {"text": "where is a shelter in Maputo"},
    },
    "domain": {"slots": {}},
}


def _environment(redis_url: str, token: str) -> dict[str, str]:
    return processes.actions_environment(
        {
            **os.environ,
            "HOTLINE_ENV": "test",
            "REDIS_URL": redis_url,
            "HOTLINE_ACTION_TOKEN": token,
        }
    )


@pytest.fixture(scope="module")
def action_server(redis_server, tmp_path_factory) -> Iterator[str]:
    port = processes.free_port()
    log = tmp_path_factory.mktemp("actions") / "actions.log"
    server = subprocess.Popen(
        processes.actions_command(port),
        env=_environment(redis_server.url, ACTION_TOKEN),
        cwd=PROJECT_ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        if not processes.wait_http(f"{url}/health", 60):
            pytest.fail("the action server did not start: " + Path(log).read_text()[-2000:])
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def _post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/webhook", content=body, headers=headers, timeout=30)


def test_rasa_with_the_token_runs_an_action(action_server: str) -> None:
    reply = _post(
        action_server,
        json.dumps(CALL).encode(),
        Authorization=f"Bearer {ACTION_TOKEN}",
        **{"Content-Type": "application/json"},
    )
    assert reply.status_code == 200
    assert reply.json()["responses"][0]["text"]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", ACTION_TOKEN, f"Basic {ACTION_TOKEN}"]
)
def test_any_other_caller_is_refused(action_server: str, authorization: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    reply = _post(action_server, json.dumps(CALL).encode(), **headers)
    assert reply.status_code == 401
    assert httpx.get(f"{action_server}/actions", timeout=10).status_code == 401


def test_the_health_probe_needs_no_token(action_server: str) -> None:
    assert httpx.get(f"{action_server}/health", timeout=10).status_code == 200


def test_prometheus_reads_each_actions_time_and_nothing_a_person_said(action_server: str) -> None:
    def runs(text: str) -> float:
        for line in text.splitlines():
            if line.startswith(
                'hotline_action_seconds_count{action="action_list_services",outcome="ok"}'
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = runs(httpx.get(f"{action_server}/metrics", timeout=10).text)
    reply = _post(
        action_server,
        json.dumps(CALL).encode(),
        Authorization=f"Bearer {ACTION_TOKEN}",
        **{"Content-Type": "application/json"},
    )
    assert reply.status_code == 200
    scraped = httpx.get(f"{action_server}/metrics", timeout=10)  # no token: loopback only
    assert scraped.status_code == 200
    assert runs(scraped.text) == before + 1
    assert "shelter" not in scraped.text and "c-server-test" not in scraped.text


def test_a_compressed_call_from_rasa_still_runs(action_server: str) -> None:
    reply = _post(
        action_server,
        zlib.compress(json.dumps(CALL).encode()),
        Authorization=f"Bearer {ACTION_TOKEN}",
        **{"Content-Encoding": "deflate"},
    )
    assert reply.status_code == 200
    assert reply.json()["responses"][0]["text"]


def test_a_deflate_bomb_is_refused_without_being_inflated(action_server: str) -> None:
    # 50 KB on the wire, 64 MB once inflated: rasa-sdk alone would inflate it all.
    bomb = zlib.compress(b"{" + b" " * (64 * 1024 * 1024) + b"}", 9)
    assert len(bomb) < 100_000
    reply = _post(
        action_server,
        bomb,
        Authorization=f"Bearer {ACTION_TOKEN}",
        **{"Content-Encoding": "deflate"},
    )
    assert reply.status_code == 413
    # And it still serves the next call.
    assert httpx.get(f"{action_server}/health", timeout=10).status_code == 200


def test_a_huge_plain_body_is_refused(action_server: str) -> None:
    reply = _post(
        action_server,
        b" " * (5 * 1024 * 1024),
        Authorization=f"Bearer {ACTION_TOKEN}",
        **{"Content-Type": "application/json"},
    )
    assert reply.status_code == 413


def test_it_refuses_to_start_without_a_token(redis_server) -> None:
    result = subprocess.run(
        processes.actions_command(processes.free_port()),
        env=_environment(redis_server.url, ""),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "HOTLINE_ACTION_TOKEN is empty" in result.stderr


def test_no_secret_is_on_a_command_line_and_rasa_still_guards_its_api(rasa_stack) -> None:
    # Any local user reads /proc/<pid>/cmdline (ps); only the owner reads the environment.
    for name in ("rasa", "actions"):
        words = Path(f"/proc/{rasa_stack[name].process.pid}/cmdline").read_bytes().split(b"\0")
        shown = b" ".join(words).decode()
        assert "test-rasa-token" not in shown and ACTION_TOKEN not in shown, name
        assert "--auth-token" not in shown
    url = rasa_stack["rasa_url"]
    assert httpx.get(f"{url}/status", timeout=10).status_code == 401
    assert httpx.get(f"{url}/status", params={"token": "test-rasa-token"}, timeout=10).is_success
