"""`make bench-train`: the former pipeline (bench/baseline-config.yml) and config.yml, trained
on the same data in the same run, side by side: training time, peak memory, intent accuracy
on the held-out NLU sets and the blind figures of the risk screen on each model.

    python bench/train.py [--only candidate]

Results are printed and written to bench/results/train-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotline.language import LANGUAGES
from hotline.settings import Settings
from ops import evaluation
from ops.processes import RASA_BIN
from ops.triage import parse, rasa_parser

PIPELINES = {"baseline": ROOT / "bench" / "baseline-config.yml", "candidate": ROOT / "config.yml"}


def peak_rss_kb(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM), 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def train(config: Path, out: Path) -> dict[str, float]:
    command = [
        str(RASA_BIN),
        "train",
        "--domain",
        "bot",
        "--config",
        str(config),
        "--data",
        "data/nlu",
        "data/stories",
        "data/rules",
        "--out",
        str(out),
        "--fixed-model-name",
        "model",
        "--force",
    ]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.monotonic()
    log = (out / "train.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    peak = 0
    while process.poll() is None:
        peak = max(peak, peak_rss_kb(process.pid))
        time.sleep(0.5)
    if process.returncode != 0:
        raise SystemExit(f"training with {config.name} failed; see {out / 'train.log'}")
    return {"seconds": time.monotonic() - started, "peak_rss_mb": peak / 1024}


def measure(model: Path) -> dict[str, object]:
    blind = evaluation.blind_set()
    with rasa_parser(Settings(), model=model) as client:
        held_out = {}
        for language in LANGUAGES:
            pairs = evaluation.held_out(language)
            hits = sum(parse(client, text).intent == intent for text, intent in pairs)
            held_out[language] = hits / len(pairs) if pairs else float("nan")
        parsed = evaluation.parse_all(client, blind)
    f = evaluation.figures(blind, evaluation.screen(parsed))
    return {
        "nlu_held_out_accuracy": held_out,
        "blind": {
            name: getattr(f, name)
            for name in (
                "emergency_recall",
                "high_or_above_recall",
                "benign_flagged",
                "handoff_correct",
                "intent_accuracy",
            )
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(PIPELINES))
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as folder:
        for name, config in PIPELINES.items():
            if args.only and name != args.only:
                continue
            out = Path(folder) / name
            out.mkdir()
            print(f"training {name} ({config.relative_to(ROOT)}) ...", flush=True)
            results[name] = {**train(config, out), **measure(out / "model.tar.gz")}
    print()
    names = list(results)
    print(f"{'':<34}" + "".join(f"{n:>12}" for n in names))

    def line(label: str, values: list[float], fmt: str = "{:>12.3f}") -> None:
        print(f"{label:<34}" + "".join(fmt.format(v) for v in values))

    line("training time (s)", [results[n]["seconds"] for n in names], "{:>12.0f}")  # type: ignore[misc]
    line("peak memory (MB)", [results[n]["peak_rss_mb"] for n in names], "{:>12.0f}")  # type: ignore[misc]
    for language in LANGUAGES:
        line(
            f"tests/nlu accuracy {language}",
            [results[n]["nlu_held_out_accuracy"][language] for n in names],
        )  # type: ignore[index]
    for figure in (
        "emergency_recall",
        "high_or_above_recall",
        "benign_flagged",
        "handoff_correct",
        "intent_accuracy",
    ):
        line(f"blind {figure}", [results[n]["blind"][figure] for n in names])  # type: ignore[index]
    if len(names) == 2:
        base, cand = (results[n]["seconds"] for n in names)
        print(f"\ncandidate trains in {cand / base:.2f} x the baseline's time")  # type: ignore[operator]
    target = ROOT / "bench" / "results"
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"train-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results in {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
