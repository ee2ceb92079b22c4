"""`hotline triage`: the production path (language, the trained model, risk) over JSON lines.

Input, one conversation a line: {"id": "...", "messages": ["...", ...]} (oldest first).
Output, same order: {"id", "language", "intent", "confidence", "risk", "handoff"}.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import httpx

from hotline.language import choose_language
from hotline.settings import Settings
from ops import processes
from protection import risk

log = logging.getLogger(__name__)


@contextmanager
def rasa_parser(settings: Settings) -> Iterator[httpx.Client]:
    """A client for /model/parse: the running Rasa when RASA_URL answers, else our own one."""
    token = settings.rasa_token.get_secret_value()
    params = {"token": token} if token else {}
    if processes.wait_http(f"{settings.rasa_url}/status", 1.0, ok=(200, 401, 403)):
        with httpx.Client(base_url=settings.rasa_url, params=params, timeout=30) as client:
            yield client
        return
    port = processes.free_port()
    # Parsing needs no tracker store or action server: start Rasa with the model alone.
    command = [
        str(processes.RASA_BIN), "run", "--enable-api", "--interface", "127.0.0.1",
        "--port", str(port), "--model", str(processes.MODEL),
    ]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    # Rasa reads endpoints.yml from its working folder when present; ours names the
    # tracker store and action server, which parsing does not need. Start it elsewhere.
    workdir = tempfile.mkdtemp(prefix="hotline-triage-")
    server = subprocess.Popen(
        command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if not processes.wait_http(f"http://127.0.0.1:{port}/status", 300):
            raise RuntimeError("Rasa did not start; is the model trained (make train)?")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def triage_conversation(client: httpx.Client, messages: list[str]) -> dict[str, Any]:
    language: str | None = None
    parsed: list[tuple[str, str | None, float]] = []
    for text in messages:
        language = choose_language(text, language)
        result = client.post("/model/parse", json={"text": text}).json()
        intent = result.get("intent") or {}
        name = intent.get("name")
        confidence = float(intent.get("confidence") or 0.0)
        if name == "nlu_fallback":
            # The fallback hides the model's best guess; the guess is what triage reports.
            ranking = result.get("intent_ranking") or []
            best = next((r for r in ranking if r.get("name") != "nlu_fallback"), {})
            name, confidence = best.get("name", "out_of_scope"), float(best.get("confidence") or 0.0)
        parsed.append((text, name, confidence))
    assessment = risk.assess(parsed)
    last_intent, last_confidence = (parsed[-1][1], parsed[-1][2]) if parsed else ("out_of_scope", 0.0)
    handoff = assessment.level in ("high", "emergency") or last_intent == "request_human"
    return {
        "language": language or "pt",
        "intent": last_intent,
        "confidence": round(last_confidence, 4),
        "risk": assessment.level,
        "handoff": handoff,
    }


def main(source: IO[str], sink: IO[str]) -> int:
    settings = Settings()
    with rasa_parser(settings) as client:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                messages = item["messages"]
                if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
                    raise ValueError("messages must be a list of strings")
            except (ValueError, KeyError, TypeError) as error:
                print(f"line {number}: {error}", file=sys.stderr)
                sink.write(json.dumps({"id": None, "error": str(error)}) + "\n")
                continue
            result = {"id": item.get("id"), **triage_conversation(client, messages)}
            sink.write(json.dumps(result, ensure_ascii=False) + "\n")
            sink.flush()
    return 0
