"""The whole hotline for browser tests: real Rasa and action server, gateway, sandbox phone,
worker, sender and console, each as `make run` starts it, and Debian's headless chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from channels import gateway
from channels.sandbox import app as sandbox
from hotline.settings import PROJECT_ROOT
from ops import processes
from tests.channels.conftest import ChannelProcess, ServerThread, service_env

ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
# Without these, chromium keeps trying to reach Google's hosts through a closed network.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Hotline:
    sandbox_url: str
    console_url: str
    logs: Path

    def output(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}"
            for log in sorted(self.logs.glob("*.log"))
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module-scoped: Playwright's sync API runs an event loop on this thread while it is open,
    # and the later tests' asyncio.run() must not find it running.
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "chromium is not installed: run the tests through `make test`, which installs it"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def hotline(rasa_stack, settings_factory, db, tmp_path) -> Iterator[Hotline]:
    gateway_port, sandbox_port, console_port = (processes.free_port() for _ in range(3))
    settings = settings_factory(
        RASA_URL=rasa_stack["rasa_url"],
        PUBLIC_URL=f"http://127.0.0.1:{gateway_port}",
        SANDBOX_URL=f"http://127.0.0.1:{sandbox_port}",
    )
    env = service_env(settings)
    servers = [
        ServerThread(gateway.create_app(settings), gateway_port),
        ServerThread(sandbox.create_app(settings), sandbox_port),
    ]
    for server in servers:
        server.start()
    workers = [
        ChannelProcess(module, env, tmp_path).start()
        for module in ("channels.worker", "channels.sender")
    ]
    console_log = (tmp_path / "console.log").open("ab")
    console = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(console_port),
            "--no-access-log",
            "--factory",
            "referral.console.main:create_app",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=console_log,
        stderr=subprocess.STDOUT,
    )
    try:
        console_url = f"http://127.0.0.1:{console_port}"
        if not processes.wait_http(console_url + "/healthz", 30):
            pytest.fail(
                "the console did not start: " + (tmp_path / "console.log").read_text()[-2000:]
            )
        yield Hotline(settings.sandbox_url, console_url, tmp_path)
    finally:
        console.terminate()
        console.wait(timeout=10)
        for process in workers:
            process.stop()
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
