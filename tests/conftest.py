"""Real servers for the tests: a Redis, the action server and the Rasa server.

Each is started once per test session on a free loopback port, in its own data folder,
and stopped at the end. Nothing is mocked: tests that say they test the flow use these.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hotline.settings import PROJECT_ROOT, Settings
from ops import processes

SECRET = "test-secret-0123456789abcdef"
FERNET_KEY = "yqrMa2c6h3xS1X2JpI1Ksy6rWlqkz3wY0Cq8Kq2fYbA="
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
ACTION_TOKEN = "test-action-token-0123456789"


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    """Argon2 at its production cost is half a second of CPU a hash, and most console tests
    make an account and sign in: inside the test process the hashes are made at the lowest
    cost (still argon2id, still verified). Processes the tests start hash at full cost."""
    from argon2 import PasswordHasher

    from referral import accounts

    production = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    accounts._hasher = production


class RedisServer:
    """A redis-server process we own, so tests can restart it."""

    def __init__(self, data_dir: Path) -> None:
        self.port = processes.free_port()
        self.data_dir = data_dir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: run the tests through `make test`")
        self.process = subprocess.Popen(
            processes.redis_command(self.port, self.data_dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # SHUTDOWN flushes the append-only file, as a clean restart in production would.
            try:
                redis.Redis(port=self.port).shutdown(nosave=False)
            except redis.ConnectionError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """A crash, not a shutdown: what survives is what the AOF already had."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A clean database for each test."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def settings_factory(redis_server: RedisServer):
    def make(**overrides: object) -> Settings:
        values = {
            "HOTLINE_ENV": "test",
            "REDIS_URL": redis_server.url,
            "HOTLINE_SECRET": SECRET,
            "HOTLINE_FERNET_KEY": FERNET_KEY,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "RASA_TOKEN": "test-rasa-token",
            "HOTLINE_ACTION_TOKEN": ACTION_TOKEN,
        }
        values.update(dict(overrides.items()))
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory) -> Settings:
    return settings_factory()


class Service:
    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def rasa_stack(redis_server: RedisServer, settings_factory, tmp_path_factory) -> Iterator[dict]:
    """The real action server and the real Rasa server with the trained model."""
    if not processes.MODEL.exists():
        pytest.fail("no trained model at models/hotline.tar.gz: run the tests through `make test`")
    logs = tmp_path_factory.mktemp("logs")
    settings = settings_factory()
    action_port, rasa_port, nlg_port = (
        processes.free_port(),
        processes.free_port(),
        processes.free_port(),
    )
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "HOTLINE_ENV": "test",
        "HOTLINE_SECRET": SECRET,
        "HOTLINE_FERNET_KEY": FERNET_KEY,
        "HOTLINE_ACTION_TOKEN": ACTION_TOKEN,
    }
    actions = Service(
        "actions",
        processes.actions_command(action_port),
        processes.actions_environment(env),
        logs / "actions.log",
    )
    # The NLG endpoint reads a copy of bot/, so a test can edit a response as an editor would.
    bot_dir = tmp_path_factory.mktemp("bot")
    for path in (PROJECT_ROOT / "bot").glob("*.yml"):
        shutil.copy(path, bot_dir / path.name)
    nlg = Service(
        "nlg",
        processes.nlg_command(nlg_port),
        {**env, "HOTLINE_BOT_DIR": str(bot_dir)},
        logs / "nlg.log",
    )
    rasa = Service(
        "rasa",
        processes.rasa_command(rasa_port),
        processes.rasa_environment(settings, action_port, nlg_port),
        logs / "rasa.log",
    )
    actions.start()
    nlg.start()
    rasa.start()
    try:
        if not processes.wait_http(f"http://127.0.0.1:{action_port}/health", 60):
            pytest.fail(
                "action server did not start: " + (logs / "actions.log").read_text()[-2000:]
            )
        if not processes.wait_http(f"http://127.0.0.1:{nlg_port}/healthz", 60):
            pytest.fail("NLG endpoint did not start: " + (logs / "nlg.log").read_text()[-2000:])
        if not processes.wait_http(
            f"http://127.0.0.1:{rasa_port}/status?token=test-rasa-token", 240
        ):
            pytest.fail("Rasa did not start: " + (logs / "rasa.log").read_text()[-2000:])
        yield {
            "rasa_url": f"http://127.0.0.1:{rasa_port}",
            "action_url": f"http://127.0.0.1:{action_port}",
            "settings": settings_factory(RASA_URL=f"http://127.0.0.1:{rasa_port}"),
            "rasa": rasa,
            "actions": actions,
            "nlg_url": f"http://127.0.0.1:{nlg_port}",
            "bot_dir": bot_dir,
        }
    finally:
        rasa.stop()
        nlg.stop()
        actions.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that start the real Rasa on the trained model are `needs_model`: `make check`
    (the fast lane) leaves them to `make test`, which trains first.

    Under pytest-xdist (`--dist loadgroup`) they are also one group, so a single worker starts
    the Rasa stack once and runs them in order while the other workers take the rest."""
    for item in items:
        if "rasa_stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.needs_model)
            item.add_marker(pytest.mark.xdist_group("rasa"))
