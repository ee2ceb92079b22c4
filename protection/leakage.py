"""Near-duplicates between what the screen learns from and what it is measured on.

A figure on a message that is almost a training example (or a lexicon phrase) measures memory,
not the screen. This finds every measured message within token-Jaccard `LIMIT` of a training
example, a lexicon example or a lexicon phrase; `tests/test_leakage.py` keeps it at zero in CI.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hotline import yamlfiles
from hotline.language import LANGUAGES
from hotline.text import fold

LIMIT = 0.8
_TOKEN = re.compile(r"[a-z0-9]+")
# Lexicon phrase syntax (data/risk/indicators.yml): alternatives, optional words, gaps.
_SYNTAX = re.compile(r"\{[a-z]+\}|\.\.\.|[*()\[\]|/?]")


def tokens(text: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(fold(text.replace("'", " "))))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class Source:
    where: str  # file and what inside it, for the report
    text: str


def training_examples(root: Path) -> Iterator[Source]:
    for path in sorted((root / "data" / "nlu").rglob("*.yml")):
        for block in yamlfiles.read(path).get("nlu") or []:
            for line in str(block.get("examples") or "").splitlines():
                text = line.strip().removeprefix("- ").strip()
                if text:
                    yield Source(f"{path.relative_to(root)} ({block.get('intent')})", text)


def lexicon_entries(root: Path) -> Iterator[Source]:
    path = root / "data" / "risk" / "indicators.yml"
    data = yamlfiles.read(path)
    where = str(path.relative_to(root))
    nodes: list[tuple[str, object]] = []
    for group in data.get("groups") or []:
        for part in ("phrases", "examples", "exceptions"):
            nodes.append((f"{where} {group.get('id')} {part}", group.get(part)))
    for name, node in (data.get("context") or {}).items():
        nodes.append((f"{where} context {name}", node))
    for label, node in nodes:
        if isinstance(node, dict):
            for language in LANGUAGES:
                for phrase in node.get(language) or []:
                    # A phrase is measured as the words it is written with.
                    yield Source(label, _SYNTAX.sub(" ", str(phrase)))


def measured_messages(root: Path) -> Iterator[Source]:
    for folder in ("blind5", "blind4", "dev", "eval"):
        for path in sorted((root / "tests" / folder).glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    item = json.loads(line)
                    for text in item["messages"]:
                        yield Source(f"{path.relative_to(root)} {item['id']}", text)
    for path in sorted((root / "tests" / "nlu").glob("*.yml")):
        for block in yamlfiles.read(path).get("nlu") or []:
            for line in str(block.get("examples") or "").splitlines():
                text = line.strip().removeprefix("- ").strip()
                if text:
                    yield Source(f"{path.relative_to(root)} ({block.get('intent')})", text)


@dataclass(frozen=True)
class Leak:
    measured: Source
    learned: Source
    similarity: float


def near_duplicates(
    measured: Iterable[Source], learned: Iterable[Source], limit: float = LIMIT
) -> list[Leak]:
    """Every (measured, learned) pair at or above `limit`, through an index on tokens."""
    learned_list = [(source, tokens(source.text)) for source in learned]
    index: dict[str, list[int]] = defaultdict(list)
    for number, (_, words) in enumerate(learned_list):
        for word in words:
            index[word].append(number)
    leaks = []
    for source in measured:
        words = tokens(source.text)
        if not words:
            continue
        candidates = {n for word in words for n in index.get(word, ())}
        for number in candidates:
            learned_source, learned_words = learned_list[number]
            # Jaccard >= limit needs the smaller set to be at least limit x the larger.
            if min(len(words), len(learned_words)) < limit * max(len(words), len(learned_words)):
                continue
            similarity = jaccard(words, learned_words)
            if similarity >= limit:
                leaks.append(Leak(source, learned_source, similarity))
    return leaks


def find(root: Path) -> list[Leak]:
    learned = list(training_examples(root)) + list(lexicon_entries(root))
    return near_duplicates(measured_messages(root), learned)
