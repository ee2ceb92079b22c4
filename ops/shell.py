"""`make shell`: a content editor chats with the bot in the terminal, in one language.

Uses the running hotline when Rasa answers at RASA_URL; otherwise starts a private
Redis, action server and Rasa on free ports and stops them on exit.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx

from hotline.settings import Settings
from ops import launcher, processes


def _start(stack: ExitStack, command: list[str], env: dict[str, str]) -> None:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    stack.callback(process.wait, 30)
    stack.callback(process.terminate)


def _private_rasa(stack: ExitStack) -> str:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    redis_port, action_port, rasa_port, nlg_port = (processes.free_port() for _ in range(4))
    # A private Rasa still gets a token: its admin API must not be open to other local users.
    # The other secrets are the dev ones `make run` uses (var/dev.env).
    token, action_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    env = {
        **launcher.environment(),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RASA_TOKEN": token,
        "HOTLINE_ACTION_TOKEN": action_token,
    }
    settings = Settings(
        HOTLINE_ENV=env["HOTLINE_ENV"],
        REDIS_URL=env["REDIS_URL"],
        RASA_TOKEN=token,
        HOTLINE_ACTION_TOKEN=action_token,
    )
    _start(stack, processes.redis_command(redis_port, folder), env)
    _start(stack, processes.actions_command(action_port), processes.actions_environment(env))
    _start(stack, processes.nlg_command(nlg_port), env)
    _start(
        stack,
        processes.rasa_command(rasa_port),
        processes.rasa_environment(settings, action_port, nlg_port),
    )
    print("starting the bot (about a minute)…")
    url = f"http://127.0.0.1:{rasa_port}"
    if not processes.wait_http(f"{url}/status?token={token}", 300):
        raise SystemExit("Rasa did not start; see var/log/rasa.log")
    return url


def main(language: str) -> int:
    settings = Settings()
    with ExitStack() as stack:
        running = processes.wait_http(f"{settings.rasa_url}/", 1.0)
        url = settings.rasa_url if running else _private_rasa(stack)
        sender = "shell-" + secrets.token_hex(4)
        print(f"Talking to the bot in '{language}'. Empty line or Ctrl-D ends.")
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                try:
                    text = input("you> ").strip()
                except EOFError:
                    break
                if not text:
                    break
                body = {
                    "sender": sender,
                    "message": text,
                    "metadata": {"language": language, "channel": "sms"},
                }
                for message in client.post("/webhooks/rest/webhook", json=body).json():
                    print("bot>", message.get("text", ""))
    return 0
