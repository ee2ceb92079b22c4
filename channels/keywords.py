"""Reserved words (STOP, START, HELP, language picks, DELETE) and the notes the channel sends itself.

Both come from data/keywords.yml, which content editors maintain in all four languages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hotline import yamlfiles
from hotline.language import LANGUAGES
from hotline.text import fold

Kind = Literal["stop", "start", "help", "language", "delete"]
KINDS: tuple[Kind, ...] = ("stop", "start", "help", "language", "delete")
NOTES = (
    "opted_out",
    "opted_in",
    "help",
    "language_set",
    "media_only",
    "truncated",
    "received_will_answer",
    "delete_confirm",
    "delete_done",
    "delete_cancelled",
)

# People end a one-word SMS with all sorts of things: "Stop!", "ajuda?", "  PT. "
_EDGES = " \t\r\n.,;:!?¡¿'\"()*-_"


def normalise(text: str) -> str:
    """Lower case, accents dropped, punctuation trimmed, inner spaces collapsed."""
    return re.sub(r"\s+", " ", fold(text).strip(_EDGES))


@dataclass(frozen=True)
class Reserved:
    """A whole message that is a reserved word, and the languages that word belongs to."""

    kind: Kind
    languages: tuple[str, ...]

    def language(self, previous: str | None) -> str:
        """The language to answer in: the conversation's, when the word is one of its words."""
        if previous in self.languages:
            return previous
        return self.languages[0]


@dataclass(frozen=True)
class Keywords:
    words: dict[str, dict[str, tuple[str, ...]]]  # kind -> normalised word -> languages
    yes: frozenset[str]
    texts: dict[str, dict[str, str]]

    def match(self, text: str) -> Reserved | None:
        word = normalise(text)
        if not word:
            return None
        for kind in KINDS:
            languages = self.words.get(kind, {}).get(word)
            if languages:
                return Reserved(kind, languages)
        return None

    def confirms(self, text: str) -> bool:
        """Whether a reply to the DELETE question says yes, in any of the four languages."""
        return normalise(text) in self.yes

    def note(self, name: str, language: str | None) -> str:
        variants = self.texts[name]
        return variants.get(language or "pt") or variants["pt"]


def parse(data: dict) -> Keywords:
    words: dict[str, dict[str, tuple[str, ...]]] = {}
    for kind in KINDS:
        table: dict[str, list[str]] = {}
        for language in LANGUAGES:
            for word in (data.get("keywords", {}).get(kind) or {}).get(language) or []:
                table.setdefault(normalise(str(word)), []).append(language)
        words[kind] = {word: tuple(dict.fromkeys(langs)) for word, langs in table.items()}
    yes = frozenset(
        normalise(str(word))
        for language in LANGUAGES
        for word in (data.get("keywords", {}).get("yes") or {}).get(language) or []
    )
    texts = {name: dict(variants) for name, variants in (data.get("texts") or {}).items()}
    missing = [name for name in NOTES if name not in texts]
    if missing:
        raise ValueError(f"keywords.yml has no text for: {', '.join(missing)}")
    return Keywords(words, yes, texts)


def load(path: Path) -> Keywords:
    """The keyword file, re-read when an editor changes it (live at the next message)."""
    return yamlfiles.load(path, parse)
