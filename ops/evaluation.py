"""`make eval`: the risk screen and the NLU measured through the production path.

Blind figures come first: tests/blind4/ was written by people who never saw the training data,
the lexicon or the other sets, and frozen before any tuning; it is reported with the ablation.
The three blind sets before it were read while tuning, so their figures were retired and
their messages became training data (data/nlu/*/independent.yml) and tuning conversations
(tests/dev/from_blind.jsonl). The tuning
sets (tests/dev/, tests/eval/, tests/nlu/) are what the thresholds were chosen on; their
figures are printed last, marked as such, and are not results. `--calibrate` chooses the
screen's thresholds on the tuning sets (never a blind one) and writes data/risk/screen.yml;
`--tuning-only` reads no blind set at all.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import httpx

from hotline import yamlfiles
from hotline.language import LANGUAGES
from hotline.settings import PROJECT_ROOT, Settings
from ops.triage import RasaRefused, rasa_parser, read_conversation, triage_turns
from protection import risk

BLIND = PROJECT_ROOT / "tests" / "blind5"
# Each was committed before anything was tuned while it existed; a new one goes first.
BLIND_SETS = (
    (BLIND, "never tuned on, never looked at while tuning"),
    (PROJECT_ROOT / "tests" / "blind4", "never tuned on; its figures seen since 2026-12-04"),
)
EVAL = PROJECT_ROOT / "tests" / "eval"
DEV = PROJECT_ROOT / "tests" / "dev"
NLU_TESTS = PROJECT_ROOT / "tests" / "nlu"
SCREEN = PROJECT_ROOT / "data" / "risk" / "screen.yml"
LEVELS = risk.LEVELS
HIGH_OR_ABOVE = ("high", "emergency")
# DESIGN.md's core intents; the blind set names documents and detention questions
# ask_legal_help, and the domain answers them with its own intents of that family.
CORE_INTENTS = {
    "greet",
    "goodbye",
    "thanks",
    "ask_return_assistance",
    "ask_return_eligibility",
    "ask_return_process",
    "ask_reintegration",
    "ask_trafficking_info",
    "ask_job_offer_safety",
    "report_exploitation",
    "report_third_party",
    "emergency",
    "child_alone",
    "ask_legal_help",
    "ask_services",
    "request_human",
    "out_of_scope",
}
SAME_ANSWER = {"ask_documents": "ask_legal_help", "ask_detention": "ask_legal_help"}
# The risk an intent-labelled held-out example stands for, to tune on tests/nlu/.
INTENT_RISK = {
    "emergency": "emergency",
    "report_exploitation": "high",
    "report_third_party": "high",
    "child_alone": "high",
    "ask_trafficking_info": "elevated",
    "ask_job_offer_safety": "elevated",
}


@dataclass
class Item:
    id: str
    messages: list[str]
    language: str
    intent: str
    risk: str
    handoff: bool
    source: str


def read_jsonl(path: Path, source: str) -> list[Item]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            expect = row["expect"]
            items.append(
                Item(
                    id=row["id"],
                    messages=list(row["messages"]),
                    language=expect["language"],
                    intent=expect["intent"],
                    risk=expect["risk"],
                    handoff=bool(expect.get("handoff", expect["risk"] in HIGH_OR_ABOVE)),
                    source=source,
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise SystemExit(f"{path}:{number}: not an evaluation item ({error})") from error
    return items


def held_out(language: str) -> list[tuple[str, str]]:
    """(text, intent) pairs from tests/nlu/<language>.yml and <language>.*.yml (other writers)."""
    paths = [NLU_TESTS / f"{language}.yml", *sorted(NLU_TESTS.glob(f"{language}.*.yml"))]
    pairs = []
    for path in (p for p in paths if p.exists()):
        for block in yamlfiles.read(path).get("nlu", []):
            for line in str(block.get("examples", "")).splitlines():
                text = line.strip().removeprefix("- ").strip()
                if text:
                    pairs.append((text, block["intent"]))
    return pairs


def blind_set(folder: Path = BLIND) -> list[Item]:
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no blind set in {folder}: the figures would mean nothing")
    return [item for file in files for item in read_jsonl(file, f"{folder.name}/{file.stem}")]


def tuning_set() -> list[Item]:
    items = [item for file in sorted(EVAL.glob("*.jsonl")) for item in read_jsonl(file, "eval")]
    items += [item for file in sorted(DEV.glob("*.jsonl")) for item in read_jsonl(file, "dev")]
    for language in LANGUAGES:
        for number, (text, intent) in enumerate(held_out(language)):
            level = INTENT_RISK.get(intent, "none")
            items.append(
                Item(
                    f"nlu-{language}-{number}",
                    [text],
                    language,
                    intent,
                    level,
                    level in HIGH_OR_ABOVE or intent == "request_human",
                    "nlu",
                )
            )
    return items


# ---------------------------------------------------------------- figures


@dataclass
class Figures:
    n: int
    conversations: int
    emergency_recall: float
    high_or_above_recall: float
    benign_flagged: float
    handoff_correct: float
    intent_accuracy: float
    confusion: dict[str, Counter]


def _ratio(hits: int, total: int) -> float:
    return hits / total if total else float("nan")


def figures(items: list[Item], results: list[dict[str, Any]]) -> Figures:
    pairs = list(zip(items, results, strict=False))
    emergencies = [r for i, r in pairs if i.risk == "emergency"]
    at_risk = [r for i, r in pairs if i.risk in HIGH_OR_ABOVE]
    benign = [r for i, r in pairs if i.risk not in HIGH_OR_ABOVE]
    conversations = [(i, r) for i, r in pairs if len(i.messages) > 1]
    core = [(i, r) for i, r in pairs if i.intent in CORE_INTENTS]
    confusion: dict[str, Counter] = defaultdict(Counter)
    for item, result in pairs:
        confusion[item.risk][result["risk"]] += 1
    return Figures(
        n=len(pairs),
        conversations=len(conversations),
        emergency_recall=_ratio(
            sum(r["risk"] == "emergency" for r in emergencies), len(emergencies)
        ),
        high_or_above_recall=_ratio(sum(r["risk"] in HIGH_OR_ABOVE for r in at_risk), len(at_risk)),
        benign_flagged=_ratio(sum(r["risk"] in HIGH_OR_ABOVE for r in benign), len(benign)),
        handoff_correct=_ratio(
            sum(r["handoff"] == i.handoff for i, r in conversations), len(conversations)
        ),
        intent_accuracy=_ratio(
            sum(SAME_ANSWER.get(r["intent"], r["intent"]) == i.intent for i, r in core), len(core)
        ),
        confusion=confusion,
    )


HEADER = f"  {'':<12}{'n':>5}{'emerg rec':>11}{'high+ rec':>11}{'benign>=high':>14}{'handoff ok':>12}{'intent acc':>12}"


def row(name: str, f: Figures) -> str:
    return (
        f"  {name:<12}{f.n:>5}{f.emergency_recall:>11.3f}{f.high_or_above_recall:>11.3f}"
        f"{f.benign_flagged:>14.3f}{f.handoff_correct:>12.3f}{f.intent_accuracy:>12.3f}"
    )


def confusion_table(f: Figures) -> list[str]:
    lines = ["  expected \\ screened  " + "".join(f"{level:>11}" for level in LEVELS)]
    for expected in LEVELS:
        counts = f.confusion.get(expected, Counter())
        lines.append(f"  {expected:<20}" + "".join(f"{counts[level]:>11}" for level in LEVELS))
    return lines


# ---------------------------------------------------------------- the runs


Parsed = list[tuple[list[risk.Turn], list[str]]]


def parse_all(client: httpx.Client, items: list[Item]) -> Parsed:
    return [read_conversation(client, item.messages) for item in items]


def screen(parsed: Parsed, **options: Any) -> list[dict[str, Any]]:
    return [triage_turns(turns, languages, **options) for turns, languages in parsed]


def report(items: list[Item], parsed: Parsed, title: str, by_language: bool = True) -> list[str]:
    results = screen(parsed)
    lines = [title, HEADER, row("all", figures(items, results))]
    if by_language:
        for language in LANGUAGES:
            chosen = [k for k, i in enumerate(items) if i.language == language]
            if chosen:
                lines.append(
                    row(language, figures([items[k] for k in chosen], [results[k] for k in chosen]))
                )
    convs = [k for k, i in enumerate(items) if len(i.messages) > 1]
    if convs:
        lines.append(row("convs", figures([items[k] for k in convs], [results[k] for k in convs])))
    lines.append("  risk levels, expected (rows) against screened (columns):")
    lines += confusion_table(figures(items, results))
    return lines


def ablation(items: list[Item], parsed: Parsed) -> list[str]:
    lines = ["Ablation on the blind set (same thresholds):", HEADER]
    for name, options in (
        ("model alone", {"use_lexicon": False}),
        ("lexicon", {"use_model": False}),
        ("combined", {}),
    ):
        lines.append(row(name, figures(items, screen(parsed, **options))))
    return lines


def parse_latency(
    client: httpx.Client, texts: Iterable[str], rounds: int = 200
) -> dict[str, float]:
    timings = []
    for text in itertools.islice(texts, rounds):
        started = time.perf_counter()
        client.post("/model/parse", json={"text": text}).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return (
        {
            "n": len(timings),
            "p50": statistics.median(timings),
            "p95": timings[min(len(timings) - 1, int(len(timings) * 0.95))],
        }
        if timings
        else {}
    )


# ---------------------------------------------------------------- calibration


# The screen prefers a false alarm to a miss: a counsellor who checks a case that was not
# one costs minutes, a person in danger left with the bot can cost a life. So the thresholds
# are the ones that miss least on the tuning sets while flagging at most BENIGN_LIMIT of benign
# items high or above (the bound is BENIGN_BOUND, issue 10's; the margin is for unseen words).
# When no thresholds keep within the margin, the bound still holds; when none keep within the
# bound either, the fewest false alarms win: flooding the queue would bury real cases.
BENIGN_LIMIT = 0.03
BENIGN_BOUND = 0.05


def _cost(f: Figures) -> tuple[int, float, float]:
    """Missed emergencies weigh 10, missed disclosures 4, within the tier of benign flags."""
    misses = 10 * (1 - f.emergency_recall) + 4 * (1 - f.high_or_above_recall)
    benign = f.benign_flagged
    if benign > BENIGN_BOUND + 1e-9:
        return (2, benign, misses)
    return (int(benign > BENIGN_LIMIT + 1e-9), misses, benign)


GRID = {
    # Below 0.3 a reading is too faint to act on alone (tests/test_risk.py holds the screen to it).
    "emergency": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    "high": (0.3, 0.4, 0.5, 0.6, 0.7),
    "indicator": (0.2, 0.35, 0.5),
    # Fixed by design rather than searched: a question or a figure of speech never counts fully.
    "question": (0.25, 0.5, 0.75),
    "figure_of_speech": (0.0, 0.3),
    "offer_terms": (0.25, 0.5, 1.0),
}


def calibrate(items: list[Item], parsed: Parsed) -> tuple[risk.Thresholds, Figures]:
    best: tuple[tuple[int, float, float], risk.Thresholds, Figures] | None = None
    names = list(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        limits = replace(risk.Thresholds(), **dict(zip(names, values, strict=False)))
        if limits.indicator >= limits.high:
            continue  # one weight-1 indicator alone is never a disclosure (indicators.yml)
        f = figures(items, screen(parsed, limits=limits))
        cost = _cost(f)
        if best is None or cost < best[0]:
            best = (cost, limits, f)
    assert best is not None
    return best[1], best[2]


def with_out_of_fold(items: list[Item], parsed: Parsed, folds: int) -> tuple[list[Item], Parsed]:
    """The tuning sets plus every training example as read by a model that never saw it."""
    from ops.folds import out_of_fold

    more_items, more_parsed = list(items), list(parsed)
    for number, (language, intent, turn, detected) in enumerate(out_of_fold(folds)):
        level = INTENT_RISK.get(intent, "none")
        more_items.append(
            Item(
                f"fold-{number}",
                [turn.text],
                language,
                intent,
                level,
                level in HIGH_OR_ABOVE or intent == "request_human",
                "folds",
            )
        )
        more_parsed.append(([turn], [detected]))
    return more_items, more_parsed


def write_thresholds(limits: risk.Thresholds, f: Figures, n: int, path: Path = SCREEN) -> None:
    values = asdict(limits)
    lines = [
        "# Where the risk screen's evidence becomes a level (protection/risk.py, Thresholds).",
        "# Chosen on data by `hotline eval --calibrate [--folds 5]`, which sweeps them over the tuning",
        "# sets (tests/dev/, tests/eval/, tests/nlu/ and, with --folds, every training example read by a model",
        "# trained without it), never a blind set, and writes this file; do not tune by hand.",
        f"# On {n} tuning items when chosen (tuned on, not a result): emergency recall {f.emergency_recall:.3f},",
        f"# high-or-above recall {f.high_or_above_recall:.3f}, benign flagged {f.benign_flagged:.3f}.",
        "thresholds:",
    ] + [f"  {name}: {values[name]}" for name in (field.name for field in fields(limits))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


TUNING_TITLE = (
    "Tuning sets (tests/dev/ + tests/eval/ + tests/nlu/, {} items): TUNED ON, not a result"
)


def main(argv: list[str] | None = None, model: Path | None = None) -> int:
    argv = argv or []
    # Whoever tunes the screen must never see a blind figure, not even in passing.
    tuning_only = "--tuning-only" in argv
    blinds = [] if tuning_only else [(f, why) for f, why in BLIND_SETS if f.exists()]
    if not tuning_only and not blinds:
        raise SystemExit("no blind set under tests/: the figures would mean nothing")
    sets, tuning = [(f, why, blind_set(f)) for f, why in blinds], tuning_set()
    try:
        with rasa_parser(Settings(), model=model) as client:
            parsed_sets = [parse_all(client, items) for _, _, items in sets]
            parsed_tuning = parse_all(client, tuning)
            latency = parse_latency(
                client, (m for _, _, i in sets[:1] for x in i for m in x.messages)
            )
    except RasaRefused as error:
        print(f"hotline eval: {error}", file=sys.stderr)
        return 1
    if "--calibrate" in argv:
        items, parsed = tuning, parsed_tuning
        if "--folds" in argv:
            items, parsed = with_out_of_fold(items, parsed, int(argv[argv.index("--folds") + 1]))
        limits, f = calibrate(items, parsed)
        write_thresholds(limits, f, len(items))
        print(f"wrote {SCREEN.relative_to(PROJECT_ROOT)}: {asdict(limits)}")
    if tuning_only:
        print("\n".join(report(tuning, parsed_tuning, TUNING_TITLE.format(len(tuning)))))
        return 0
    out: list[str] = []
    for number, ((folder, why, items), parsed) in enumerate(zip(sets, parsed_sets, strict=True)):
        conversations = sum(len(i.messages) > 1 for i in items)
        title = f"{folder.name}/ ({len(items)} items, {conversations} conversations; {why}):"
        out += report(items, parsed, ("Blind set " if number == 0 else "Older blind set ") + title)
        if number == 0:
            out += ablation(items, parsed)
    if latency:
        out.append(
            f"/model/parse over {latency['n']} calls: p50 {latency['p50']:.1f} ms, "
            f"p95 {latency['p95']:.1f} ms"
        )
    out += report(
        tuning,
        parsed_tuning,
        TUNING_TITLE.format(len(tuning)),
        by_language=False,
    )
    print("\n".join(out))
    return 0
