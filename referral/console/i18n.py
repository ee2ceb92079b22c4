"""The console's words: one catalogue per interface language in words/<language>.yml.

Each counsellor picks Portuguese or English. The files are data, re-read when they change,
so a wording fix needs no restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hotline import yamlfiles

WORDS_DIR = Path(__file__).parent / "words"
FALLBACK = "en"


def _catalogue(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        raise TypeError("a word catalogue is a mapping of keys to texts")
    return {str(key): str(text) for key, text in data.items()}


def catalogue(language: str) -> dict[str, str]:
    """Every key and its words in one language."""
    return yamlfiles.load(WORDS_DIR / f"{language}.yml", _catalogue)


def languages() -> tuple[str, ...]:
    """The interface languages there is a catalogue for."""
    return tuple(sorted(path.stem for path in WORDS_DIR.glob("*.yml")))


class Translator:
    """`t(key, **values)`: the words for a key in one language, English for a missing file."""

    def __init__(self, language: str) -> None:
        self.language = language if language in languages() else FALLBACK
        self.words = catalogue(self.language)

    def __call__(self, key: str, **values: Any) -> str:
        text = self.words.get(key, key)
        return text.format(**values) if values else text

    def code(self, prefix: str, code: Any) -> str:
        """The words for a code ("outcome_" + "declined"), or the code as words when the
        catalogue has none yet: a counsellor never reads `report_third_party`."""
        words = self.words.get(f"{prefix}{code}")
        return words if words is not None else str(code).replace("_", " ")


def translator(language: str) -> Translator:
    return Translator(language)
