"""How each service is started, shared by the launcher, the triage command and the tests."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import httpx

from hotline.settings import PROJECT_ROOT, SECRETS_NEEDED, Settings
from hotline.settings import SECRETS as SECRET_FIELDS

RASA_BIN = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
# Starts `rasa run` with its token from the environment (every local user reads command lines).
RASA_SERVE = PROJECT_ROOT / "ops" / "rasa_serve.py"
MODEL = PROJECT_ROOT / "models" / "hotline.tar.gz"

# One table of which process holds which secret, in hotline/settings.py; the variables' names.
# HOTLINE_REDIS_KEY (dev) is the launcher's alone: each process gets only its own password.
REDIS_KEY = "HOTLINE_REDIS_KEY"
SECRETS = (*SECRET_FIELDS.values(), REDIS_KEY)


def only_needed_secrets(process: str, env: Mapping[str, str]) -> dict[str, str]:
    """`env` without the secrets `process` does not use (an unknown process gets none)."""
    needed = SECRETS_NEEDED.get(process, frozenset())
    return {k: v for k, v in env.items() if k not in SECRETS or k in needed}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_answers(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def wait_http(url: str, timeout: float, ok: tuple[int, ...] = (200,)) -> bool:
    """Poll until the URL answers with an expected status, or give up after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code in ok:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def redis_command(port: int, data_dir: Path, acl_file: Path | None = None) -> list[str]:
    """A loopback-only Redis with the append-only file on and fsynced before each answer, so
    cases and acknowledged webhooks survive a crash (the cost: deploy/redis/hotline.conf).
    With `acl_file`, only its users get in (ops/redis_users.py)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    users = ["--aclfile", str(acl_file)] if acl_file else []
    return [
        "redis-server",
        *users,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
    ]


NLG_PORT = 5056
# Silences the Rasa logger that quotes a person's message on a timeout (see the file).
RASA_LOGGING = PROJECT_ROOT / "ops" / "rasa_logging.yml"


def rasa_variables(
    settings: Settings, action_port: int, nlg_port: int = NLG_PORT
) -> dict[str, str]:
    """What endpoints.yml reads: where the action server, the NLG endpoint and Redis are."""
    url = urlparse(settings.redis_url)
    return {
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
        "NLG_ENDPOINT_URL": f"http://127.0.0.1:{nlg_port}/nlg",
        "REDIS_HOST": url.hostname or "127.0.0.1",
        "REDIS_PORT": str(url.port or 6379),
        "REDIS_DB": (url.path or "/0").lstrip("/") or "0",
        # Its own Redis user (the launcher gives Rasa the `rasa` login); empty: none needed.
        "REDIS_USERNAME": settings.redis_username,
        "REDIS_PASSWORD": settings.redis_password.get_secret_value(),
        # Rasa's own telemetry would try to reach the internet.
        "RASA_TELEMETRY_ENABLED": "false",
        # Never DEBUG, whatever the other processes use: Rasa's DEBUG lines quote every message.
        "LOG_LEVEL": "INFO",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def rasa_environment(
    settings: Settings, action_port: int, nlg_port: int = NLG_PORT
) -> dict[str, str]:
    """This process's environment without its secrets, plus what endpoints.yml reads and
    the two tokens Rasa holds (its API's and the one it shows the action server)."""
    return {
        **only_needed_secrets("rasa", os.environ),
        **rasa_variables(settings, action_port, nlg_port),
        "RASA_TOKEN": settings.rasa_token.get_secret_value(),
        "HOTLINE_ACTION_TOKEN": settings.action_token.get_secret_value(),
    }


def nlg_command(port: int) -> list[str]:
    """Rasa's NLG endpoint: the response texts of bot/ as they are now (actions/nlg.py)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--no-access-log",
        "--port",
        str(port),
        "--factory",
        "actions.nlg:serve",
    ]


def rasa_command(
    port: int, model: Path = MODEL, log_dir: Path = PROJECT_ROOT / "var" / "log"
) -> list[str]:
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(RASA_PYTHON),
        str(RASA_SERVE),
        "run",
        "--enable-api",
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        str(model),
        "--endpoints",
        str(PROJECT_ROOT / "endpoints.yml"),
        "--credentials",
        str(PROJECT_ROOT / "credentials.yml"),
        "--log-file",
        str(log_dir / "rasa.log"),
        "--logging-config-file",
        str(RASA_LOGGING),
    ]
    return command


def actions_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The action server is internal: rasa-sdk reads its bind address from SANIC_HOST."""
    return {**only_needed_secrets("actions", env), "SANIC_HOST": "127.0.0.1"}


def actions_command(port: int) -> list[str]:
    """rasa-sdk's server behind the bearer token and size limits of actions/server.py."""
    return [sys.executable, "-m", "actions.server", "--port", str(port)]


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
