"""The channel's reserved words and notes: every language, and no word under two sets."""

from __future__ import annotations

from typing import Any

from content import LANGUAGE_NAMES, LANGUAGES
from content.model import KEYWORDS, Content, is_empty, is_language_map, language_maps, line_of
from hotline.text import fold

# What the channel trims off a one-word message before comparing ("Stop!", "  PT. ").
EDGES = " \t\r\n.,;:!?¡¿'\"()*-_"


def check(content: Content) -> None:
    data = content.keywords
    if data is None:
        return
    for trail, texts in language_maps(data):
        where = " > ".join(trail) or "keywords"
        for language in LANGUAGES:
            if language not in texts or is_empty(texts[language]):
                content.error(
                    KEYWORDS,
                    line_of(texts, language) if language in texts else line_of(texts),
                    f"{where} has no "
                    f"{LANGUAGE_NAMES[language]} ({language}) entry; add "
                    f"`{language}: ...`",
                )
    _check_keyword_collisions(content, data)


def _keyword_key(word: str) -> str:
    """How the channel compares keywords: no case, no accents, no end punctuation."""
    return " ".join(fold(word).strip(EDGES).split())


def _check_keyword_collisions(content: Content, data: Any) -> None:
    """A word under two keyword sets (STOP and START) could not be answered rightly."""
    sets = data.get("keywords") if isinstance(data, dict) else None
    if not isinstance(sets, dict):
        return
    owner: dict[str, tuple[str, int]] = {}
    for name, by_language in sets.items():
        if not is_language_map(by_language):
            continue
        for language, words in by_language.items():
            line = line_of(by_language, language)
            for word in words if isinstance(words, list) else [words]:
                key = _keyword_key(str(word))
                first = owner.setdefault(key, (str(name), line))
                if first[0] != str(name):
                    content.error(
                        KEYWORDS,
                        line,
                        f"keyword '{word}' is under {name} here and under {first[0]} at line "
                        f"{first[1]} (case and accents do not count); keep it under one",
                    )
