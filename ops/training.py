"""Trains the Rasa model only when what it is trained from has changed."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import time
from pathlib import Path

from hotline.settings import PROJECT_ROOT
from ops.processes import MODEL, RASA_BIN

log = logging.getLogger(__name__)

# What the model is made from. The service directory, lexicon and channel texts are
# read at run time, so editing them needs no training.
TRAINING_INPUTS = ("config.yml", "bot", "data/nlu", "data/stories", "data/rules")
FINGERPRINT = PROJECT_ROOT / "models" / "fingerprint.txt"


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        path = root / name
        files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def needs_training() -> bool:
    return not MODEL.exists() or not FINGERPRINT.exists() or FINGERPRINT.read_text() != fingerprint()


def train(force: bool = False) -> bool:
    """Train when needed; returns True when a model was trained."""
    if not force and not needs_training():
        print("model is up to date (config.yml, bot/ and data/ unchanged)")
        return False
    wanted = fingerprint()
    started = time.monotonic()
    command = [
        str(RASA_BIN), "train", "--domain", "bot", "--config", "config.yml",
        "--data", "data/nlu", "data/stories", "data/rules",
        "--out", "models", "--fixed-model-name", "hotline", "--force",
    ]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True)
    FINGERPRINT.write_text(wanted)
    print(f"trained models/hotline.tar.gz in {time.monotonic() - started:.0f}s")
    return True
