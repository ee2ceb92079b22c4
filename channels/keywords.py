"""Reserved words (STOP, START, HELP, language picks, DELETE, BACK), a language asked for in words,
and the notes the channel sends itself.

Both come from data/keywords.yml, which content editors maintain in all four languages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hotline import language_request, yamlfiles
from hotline.language import LANGUAGES
from hotline.language_request import LanguageRequests
from hotline.text import fold

Kind = Literal["stop", "start", "help", "language", "delete", "back"]
KINDS: tuple[Kind, ...] = ("stop", "start", "help", "language", "delete", "back")
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
    no: frozenset[str]
    texts: dict[str, dict[str, str]]
    requests: LanguageRequests  # a language asked for in words

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

    def declines(self, text: str) -> bool:
        """Whether a reply to the DELETE question is a plain no (nothing left for the bot)."""
        return normalise(text) in self.no

    def language_request(self, text: str) -> str | None:
        """The language a message asks for in words, or None (hotline/language_request.py)."""
        return self.requests.asked_for(text)

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
    texts = {name: dict(variants) for name, variants in (data.get("texts") or {}).items()}
    missing = [name for name in NOTES if name not in texts]
    if missing:
        raise ValueError(f"keywords.yml has no text for: {', '.join(missing)}")
    return Keywords(
        words,
        _answers(data, "yes"),
        _answers(data, "no"),
        texts,
        language_request.parse(data),
    )


def _every_language(table: dict | None) -> list[str]:
    return [str(word) for language in LANGUAGES for word in (table or {}).get(language) or []]


def _answers(data: dict, kind: str) -> frozenset[str]:
    return frozenset(
        normalise(word) for word in _every_language(data.get("keywords", {}).get(kind))
    )


def load(path: Path) -> Keywords:
    """The keyword file, re-read when an editor changes it (live at the next message)."""
    return yamlfiles.load(path, parse)
