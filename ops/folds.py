"""Out-of-fold readings of the training data, for choosing the risk screen's thresholds.

A model is sure of the examples it was trained on, so thresholds chosen on its readings of
them (or of sets written like them) are too trusting of it: it has never been unsure there.
Here the NLU is trained k times, each time without one fold of the examples, and reads the
fold it has not seen. Those readings look like the readings of new words, and the
calibration (`hotline eval --calibrate --folds 5`) chooses the thresholds on them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from ruamel.yaml import YAML

from hotline import yamlfiles
from hotline.language import choose_language
from hotline.settings import PROJECT_ROOT, Settings
from ops.processes import RASA_BIN
from ops.triage import parse, rasa_parser
from protection import risk

NLU = PROJECT_ROOT / "data" / "nlu"
CONFIG = PROJECT_ROOT / "config.yml"


def examples() -> list[tuple[str, str, str]]:
    """(language folder, intent, text) of every training example."""
    found = []
    for path in sorted(NLU.rglob("*.yml")):
        language = path.parent.name
        for block in yamlfiles.read(path).get("nlu") or []:
            for line in str(block.get("examples") or "").splitlines():
                text = line.strip().removeprefix("- ").strip()
                if text:
                    found.append((language, str(block["intent"]), text))
    return found


def fold_of(text: str, folds: int) -> int:
    """A fixed fold per example, so a rerun reads the same split."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % folds


def _write_training(path: Path, chosen: list[tuple[str, str, str]]) -> None:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for _, intent, text in chosen:
        by_intent[intent].append(text)
    data = {
        "version": "3.1",
        "nlu": [
            {"intent": intent, "examples": "".join(f"- {t}\n" for t in texts)}
            for intent, texts in sorted(by_intent.items())
        ],
    }
    yaml = YAML()
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)


def out_of_fold(folds: int = 5) -> list[tuple[str, str, risk.Turn, str]]:
    """(language, intent, the reading of a model that never saw the text, detected language)."""
    everything = examples()
    readings = []
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory(prefix="hotline-folds-") as folder:
        for k in range(folds):
            held = [e for e in everything if fold_of(e[2], folds) == k]
            kept = [e for e in everything if fold_of(e[2], folds) != k]
            data = Path(folder) / f"fold{k}.yml"
            _write_training(data, kept)
            print(f"fold {k + 1}/{folds}: training on {len(kept)}, reading {len(held)}", flush=True)
            subprocess.run(
                [
                    str(RASA_BIN),
                    "train",
                    "nlu",
                    "--config",
                    str(CONFIG),
                    "--nlu",
                    str(data),
                    "--out",
                    folder,
                    "--fixed-model-name",
                    f"fold{k}",
                ],
                cwd=PROJECT_ROOT,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            with rasa_parser(Settings(), model=Path(folder) / f"fold{k}.tar.gz") as client:
                for language, intent, text in held:
                    readings.append(
                        (language, intent, parse(client, text), choose_language(text, None))
                    )
    return readings
