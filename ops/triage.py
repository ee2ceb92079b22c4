"""`hotline triage`: the production path (language, the trained model, risk) over JSON lines.

Input, one conversation a line: {"id": "...", "messages": ["...", ...]} (oldest first).
Output, same order: {"id", "language", "intent", "confidence", "risk", "handoff"}.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from hotline.language import choose_language
from hotline.rasa import ordinary_text
from hotline.settings import Settings
from ops import processes
from protection import risk

log = logging.getLogger(__name__)


class RasaRefused(RuntimeError):
    """Rasa answered, but not with a parse: a wrong token, no model, a server error."""


@contextmanager
def rasa_parser(settings: Settings, model: Path | None = None) -> Iterator[httpx.Client]:
    """A client for /model/parse: the running Rasa when RASA_URL answers, else our own one.

    With `model`, always our own Rasa on that model (bench-train compares two models).
    """
    if model is None and processes.wait_http(
        f"{settings.rasa_url}/status", 1.0, ok=(200, 401, 403)
    ):
        token = settings.rasa_token.get_secret_value()
        params = {"token": token} if token else {}
        with httpx.Client(base_url=settings.rasa_url, params=params, timeout=30) as client:
            check_parse(client)
            yield client
        return
    model = model or processes.MODEL
    if not model.exists():
        raise RasaRefused(f"no trained model at {model}: run `make train`")
    port = processes.free_port()
    # Parsing needs no tracker store or action server: start Rasa with the model alone.
    command = [
        str(processes.RASA_PYTHON),
        str(processes.RASA_SERVE),
        "run",
        "--enable-api",
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        str(model),
    ]
    # Even a parse-only Rasa gets a token: its admin API must not be open to other local users.
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "RASA_TOKEN": token,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    # Rasa reads endpoints.yml from its working folder when present; ours names the
    # tracker store and action server, which parsing does not need. Start it elsewhere.
    workdir = tempfile.mkdtemp(prefix="hotline-triage-")
    server = subprocess.Popen(
        command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if not processes.wait_http(f"http://127.0.0.1:{port}/status?token={token}", 300):
            raise RasaRefused(f"Rasa did not start on {model}")
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", params={"token": token}, timeout=30
        ) as client:
            check_parse(client)
            yield client
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def check_parse(client: httpx.Client) -> None:
    """Fail loudly before the first line when Rasa will not parse (a silent null intent is a lie)."""
    try:
        parse(client, "ola")
    except httpx.HTTPError as error:
        raise RasaRefused(
            f"Rasa at {client.base_url} did not answer /model/parse: {error}"
        ) from error


def parse(client: httpx.Client, text: str) -> risk.Turn:
    """One message through the model: the whole intent ranking, not only the top intent.

    The text is read as production reads it (hotline.rasa.ordinary_text): never as a command.
    """
    text = ordinary_text(text)
    response = client.post("/model/parse", json={"text": text})
    if response.status_code in (401, 403):
        raise RasaRefused(
            f"Rasa at {client.base_url} refused the request ({response.status_code}): set RASA_TOKEN "
            "to the running server's token (make run keeps it in var/dev.env)"
        )
    if response.status_code != 200:
        raise RasaRefused(
            f"Rasa at {client.base_url} answered {response.status_code} to /model/parse"
        )
    result = response.json()
    if not (result.get("intent") or {}).get("name"):
        raise RasaRefused(f"Rasa at {client.base_url} returned no intent: is a model loaded?")
    return risk.Turn.from_parse(text, result)


def triage_turns(
    turns: list[risk.Turn],
    languages: list[str],
    *,
    use_model: bool = True,
    use_lexicon: bool = True,
    limits: risk.Thresholds | None = None,
) -> dict[str, Any]:
    """The triage result for parsed turns; the switches turn parts off for the ablation."""
    assessment = risk.assess(turns, use_model=use_model, use_lexicon=use_lexicon, limits=limits)
    last = turns[-1] if turns else risk.Turn("", {})
    handoff = assessment.level in ("high", "emergency") or last.intent == "request_human"
    return {
        "language": languages[-1] if languages else "pt",
        "intent": last.intent or "out_of_scope",
        "confidence": round(last.confidence, 4),
        "risk": assessment.level,
        "handoff": handoff,
    }


def read_conversation(
    client: httpx.Client, messages: list[str]
) -> tuple[list[risk.Turn], list[str]]:
    """Each message parsed, and the language of each as the worker would choose it."""
    language: str | None = None
    languages, turns = [], []
    for text in messages:
        language = choose_language(text, language)
        languages.append(language)
        turns.append(parse(client, text))
    return turns, languages


def triage_conversation(client: httpx.Client, messages: list[str]) -> dict[str, Any]:
    return triage_turns(*read_conversation(client, messages))


def _settings() -> Settings:
    """Settings as `make run` gives them to its processes (var/dev.env in dev mode)."""
    from ops.launcher import environment

    for name, value in environment().items():
        os.environ.setdefault(name, value)
    return Settings()


def main(source: IO[str], sink: IO[str]) -> int:
    try:
        settings = _settings()
    except ValueError as error:  # pydantic's ValidationError: an unsafe or missing setting
        print(f"hotline triage: cannot start: {error}", file=sys.stderr)
        return 1
    try:
        with rasa_parser(settings) as client:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    messages = item["messages"]
                    if not isinstance(messages, list) or not all(
                        isinstance(m, str) for m in messages
                    ):
                        raise ValueError("messages must be a list of strings")
                except (ValueError, KeyError, TypeError) as error:
                    print(f"line {number}: {error}", file=sys.stderr)
                    sink.write(json.dumps({"id": None, "error": str(error)}) + "\n")
                    continue
                result = {"id": item.get("id"), **triage_conversation(client, messages)}
                sink.write(json.dumps(result, ensure_ascii=False) + "\n")
                sink.flush()
    except RasaRefused as error:
        print(f"hotline triage: {error}", file=sys.stderr)
        return 1
    return 0
