"""Trains the Rasa model only when what it is trained from has changed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from pathlib import Path

from hotline import yamlfiles
from hotline.settings import PROJECT_ROOT
from ops.processes import MODEL, RASA_BIN

log = logging.getLogger(__name__)

# What the model is made from. The service directory, lexicon and channel texts are read at
# run time, and so are the responses' words (the NLG endpoint, actions/nlg.py): editing them
# needs no training. Which responses exist is part of the domain, so adding one does.
TRAINING_INPUTS = ("config.yml", "bot", "data/nlu", "data/stories", "data/rules")
DOMAIN = "bot"
FINGERPRINT = PROJECT_ROOT / "models" / "fingerprint.txt"


def _without_response_texts(file: Path) -> bytes:
    data = yamlfiles.read(file)
    if isinstance(data.get("responses"), dict):
        data["responses"] = sorted(data["responses"])
    return json.dumps(data, sort_keys=True, default=str).encode()


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        path = root / name
        files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(_without_response_texts(file) if name == DOMAIN else file.read_bytes())
    return digest.hexdigest()


def needs_training() -> bool:
    return (
        not MODEL.exists() or not FINGERPRINT.exists() or FINGERPRINT.read_text() != fingerprint()
    )


def train(force: bool = False) -> bool:
    """Train when needed; returns True when a model was trained."""
    if not force and not needs_training():
        print(
            "model is up to date (training data, pipeline and domain unchanged; response texts are read at run time)"
        )
        return False
    wanted = fingerprint()
    started = time.monotonic()
    command = [
        str(RASA_BIN),
        "train",
        "--domain",
        "bot",
        "--config",
        "config.yml",
        "--data",
        "data/nlu",
        "data/stories",
        "data/rules",
        "--out",
        "models",
        "--fixed-model-name",
        "hotline",
        "--force",
    ]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True)
    FINGERPRINT.write_text(wanted)
    print(f"trained models/hotline.tar.gz in {time.monotonic() - started:.0f}s")
    return True
