"""`make eval`: figures on the held-out sets, through the same path as production.

- intent accuracy and macro-F1 per language on tests/nlu/<lang>.yml
- short-message language accuracy, ours against plain langdetect
- risk precision and recall on tests/eval/ (when present)
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter, defaultdict

from ruamel.yaml import YAML

from hotline.language import LANGUAGES
from hotline.settings import PROJECT_ROOT, Settings
from ops.triage import rasa_parser, triage_conversation

NLU_TESTS = PROJECT_ROOT / "tests" / "nlu"
RISK_TESTS = PROJECT_ROOT / "tests" / "eval"
LEVELS = ("none", "elevated", "high", "emergency")


def held_out(language: str) -> list[tuple[str, str]]:
    """(text, intent) pairs from tests/nlu/<language>.yml."""
    path = NLU_TESTS / f"{language}.yml"
    if not path.exists():
        return []
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    pairs = []
    for block in data.get("nlu", []):
        for line in str(block.get("examples", "")).splitlines():
            text = line.strip().removeprefix("- ").strip()
            if text:
                pairs.append((text, block["intent"]))
    return pairs


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    labels = set(gold)
    scores = []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def intent_report(client) -> dict[str, dict[str, float]]:
    report = {}
    for language in LANGUAGES:
        pairs = held_out(language)
        if not pairs:
            continue
        predicted = [triage_conversation(client, [text])["intent"] for text, _ in pairs]
        gold = [intent for _, intent in pairs]
        accuracy = sum(g == p for g, p in zip(gold, predicted)) / len(gold)
        report[language] = {"n": len(gold), "accuracy": accuracy, "macro_f1": macro_f1(gold, predicted)}
        confusions = Counter((g, p) for g, p in zip(gold, predicted) if g != p).most_common(3)
        report[language]["top_confusions"] = [f"{g}->{p} x{n}" for (g, p), n in confusions]
    return report


def parse_latency(client, rounds: int = 200) -> dict[str, float]:
    """Milliseconds per /model/parse call on held-out texts, one call at a time."""
    texts = [text for language in LANGUAGES for text, _ in held_out(language)][:rounds]
    timings = []
    for text in texts:
        started = time.perf_counter()
        client.post("/model/parse", json={"text": text}).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    if not timings:
        return {}
    timings.sort()
    return {"n": len(timings), "p50": statistics.median(timings),
            "p95": timings[min(len(timings) - 1, int(len(timings) * 0.95))]}


def risk_report(client) -> dict[str, float] | None:
    files = sorted(RISK_TESTS.glob("*.jsonl"))
    if not files:
        return None
    gold, predicted = [], []
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                gold.append(item["expect"]["risk"])
                predicted.append(triage_conversation(client, item["messages"])["risk"])
    counts: dict[str, Counter] = defaultdict(Counter)
    for g, p in zip(gold, predicted):
        counts[g][p] += 1

    def recall(levels: tuple[str, ...]) -> float:
        relevant = [(g, p) for g, p in zip(gold, predicted) if g in levels]
        return sum(p in levels for _, p in relevant) / len(relevant) if relevant else 1.0

    def precision(levels: tuple[str, ...]) -> float:
        flagged = [(g, p) for g, p in zip(gold, predicted) if p in levels]
        return sum(g in levels for g, _ in flagged) / len(flagged) if flagged else 1.0

    benign = [p for g, p in zip(gold, predicted) if g in ("none", "elevated")]
    return {
        "n": len(gold),
        "emergency_recall": recall(("emergency",)),
        "emergency_precision": precision(("emergency",)),
        "high_or_above_recall": recall(("high", "emergency")),
        "high_or_above_precision": precision(("high", "emergency")),
        "benign_flagged_high": sum(p in ("high", "emergency") for p in benign) / len(benign) if benign else 0.0,
    }


def main() -> int:
    with rasa_parser(Settings()) as client:
        intents = intent_report(client)
        risk = risk_report(client)
        latency = parse_latency(client)
    print("Intent on held-out examples (tests/nlu/):")
    print(f"  {'lang':<5}{'n':>5}{'accuracy':>10}{'macro-F1':>10}  most frequent confusions")
    for language, row in intents.items():
        print(f"  {language:<5}{row['n']:>5}{row['accuracy']:>10.3f}{row['macro_f1']:>10.3f}  "
              + ", ".join(row["top_confusions"]))
    if latency:
        print(f"/model/parse over {latency['n']} calls: p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms")
    if risk:
        print(f"Risk on tests/eval/ ({risk['n']} items):")
        for name, value in risk.items():
            if name != "n":
                print(f"  {name:<26}{value:.3f}")
    return 0
