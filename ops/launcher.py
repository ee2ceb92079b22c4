"""`make run`: start every process under one supervisor and say where to go.

Redis is started only when none answers at REDIS_URL. In dev mode (no Twilio account)
the sandbox stands in for Twilio, and secrets are generated once into var/dev.env.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
import time
from urllib.parse import urlparse

from cryptography.fernet import Fernet

from hotline.settings import PROJECT_ROOT, Settings
from ops import processes

VAR = PROJECT_ROOT / "var"
DEV_ENV = VAR / "dev.env"
ACTION_PORT, RASA_PORT, GATEWAY_PORT, SANDBOX_PORT, CONSOLE_PORT = 5055, 5005, 8000, 8025, 8080


def dev_secrets() -> dict[str, str]:
    """Random per-machine secrets for dev mode, made on the first run and kept in var/."""
    if not DEV_ENV.exists():
        VAR.mkdir(exist_ok=True)
        values = {
            "HOTLINE_SECRET": secrets.token_urlsafe(32),
            "HOTLINE_FERNET_KEY": Fernet.generate_key().decode(),
            "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
            "RASA_TOKEN": secrets.token_urlsafe(24),
        }
        DEV_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        DEV_ENV.chmod(0o600)
    pairs = (line.split("=", 1) for line in DEV_ENV.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def environment() -> dict[str, str]:
    """The process environment: the operator's variables win over generated dev secrets."""
    env = dict(os.environ)
    if not env.get("TWILIO_ACCOUNT_SID"):
        for name, value in dev_secrets().items():
            env.setdefault(name, value)
    env.setdefault("HOTLINE_ENV", "dev")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("RASA_URL", f"http://127.0.0.1:{RASA_PORT}")
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{GATEWAY_PORT}")
    env.setdefault("SANDBOX_URL", f"http://127.0.0.1:{SANDBOX_PORT}")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def services(settings: Settings, env: dict[str, str]) -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, command, environment) for each process to supervise."""
    py = sys.executable
    uvicorn = [py, "-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log"]
    planned: list[tuple[str, list[str], dict[str, str]]] = []
    redis_url = urlparse(settings.redis_url)
    if not processes.port_answers(redis_url.hostname or "127.0.0.1", redis_url.port or 6379):
        planned.append(("redis", processes.redis_command(redis_url.port or 6379, VAR / "redis"), env))
    planned += [
        ("actions", processes.actions_command(ACTION_PORT), processes.actions_environment(env)),
        ("rasa", processes.rasa_command(settings, RASA_PORT), {**processes.rasa_environment(settings, ACTION_PORT), **{k: v for k, v in env.items() if k.startswith("RASA")}}),
        ("gateway", uvicorn + ["--port", str(GATEWAY_PORT), "channels.gateway:app"], env),
        ("worker", [py, "-m", "channels.worker"], env),
        ("sender", [py, "-m", "channels.sender"], env),
        ("console", uvicorn + ["--port", str(CONSOLE_PORT), "--factory", "referral.console.main:create_app"], env),
        ("housekeeping", [py, "-m", "referral.housekeeping"], env),
    ]
    if settings.dev_mode:
        planned.append(("sandbox", uvicorn + ["--port", str(SANDBOX_PORT), "channels.sandbox.app:app"], env))
    # The first supervisor's password is shown once, so only to a person at a terminal: when
    # the output goes to a file (scripts/with-hotline, CI) no account is made.
    terminal = {"HOTLINE_SHOW_PASSWORD": "1"} if sys.stdout.isatty() else {}
    planned.append(("ready", [py, "-m", "ops.launcher", "announce"], {**env, **terminal}))
    return planned


def health_urls(settings: Settings) -> list[tuple[str, str, str]]:
    """(service, health URL, what to print) in the order a newcomer needs them."""
    token = settings.rasa_token.get_secret_value()
    urls = [
        ("action server", f"http://127.0.0.1:{ACTION_PORT}/health", f"http://127.0.0.1:{ACTION_PORT} (internal)"),
        ("Rasa", f"http://127.0.0.1:{RASA_PORT}/status?token={token}", f"http://127.0.0.1:{RASA_PORT} (internal, token in var/dev.env)"),
        ("gateway", f"http://127.0.0.1:{GATEWAY_PORT}/healthz", f"{settings.public_url}/twilio/messages (Twilio webhook)"),
        ("console", f"http://127.0.0.1:{CONSOLE_PORT}/healthz", f"http://127.0.0.1:{CONSOLE_PORT}/ (counsellors)"),
    ]
    if settings.dev_mode:
        urls.append(("sandbox phone", f"{settings.sandbox_url}/healthz", f"{settings.sandbox_url}/ (text the hotline here)"))
    return urls


def announce() -> None:
    """Wait for every service to answer its health check, print where to go, then idle."""
    settings = Settings()
    started = time.monotonic()
    lines = []
    for name, url, shown in health_urls(settings):
        if not processes.wait_http(url, timeout=300):
            print(f"{name} did not become healthy; see the lines above", flush=True)
            sys.exit(1)
        lines.append(f"  {name:<14} {shown}")
    print(f"hotline ready in {time.monotonic() - started:.1f}s:", *lines, sep="\n", flush=True)
    first_supervisor(settings)
    print("  chat with the bot in a terminal: make shell LANG=pt|en|fr|sw", flush=True)
    print("Ctrl-C stops everything.", flush=True)
    while True:
        time.sleep(3600)


def first_supervisor(settings: Settings) -> None:
    """In dev mode, the first run makes one supervisor account and shows its password once."""
    if not settings.dev_mode:
        return
    from hotline.store import connect
    from referral import accounts

    db = connect(settings)
    if accounts.all_counsellors(db):
        return
    if not os.environ.get("HOTLINE_SHOW_PASSWORD"):
        print("  console login  none yet: `.venv/bin/hotline counsellor add NAME --role supervisor`",
              flush=True)
        return
    password = accounts.generate_password()
    accounts.add(db, "supervisor", "supervisor", password, "en")
    print(f"  console login  supervisor / {password}  (shown once; add more with "
          "`.venv/bin/hotline counsellor add NAME`)", flush=True)


def run() -> int:
    from honcho.manager import Manager

    env = environment()
    os.environ.update(env)
    settings = Settings()
    (VAR / "log").mkdir(parents=True, exist_ok=True)
    manager = Manager()
    for name, command, process_env in services(settings, env):
        manager.add_process(name, shlex.join(command), env=process_env, cwd=str(PROJECT_ROOT))
    manager.loop()
    return manager.returncode or 0


if __name__ == "__main__" and sys.argv[1:] == ["announce"]:
    announce()
