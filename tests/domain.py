"""Reads the assistant's responses from bot/ the way Rasa chooses them, for assertions."""

from __future__ import annotations

from functools import lru_cache

from ruamel.yaml import YAML

from hotline.settings import PROJECT_ROOT


@lru_cache(maxsize=1)
def responses() -> dict[str, dict[str, str]]:
    """{response name: {language: text}} from bot/ and the action server's data/handoff.yml;
    the unconditioned variation is Portuguese."""
    found: dict[str, dict[str, str]] = {}
    for path in [
        *sorted((PROJECT_ROOT / "bot").glob("*.yml")),
        PROJECT_ROOT / "data" / "handoff.yml",
    ]:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        for name, variations in (data.get("responses") or {}).items():
            for variation in variations:
                conditions = variation.get("condition") or []
                language = next(
                    (c["value"] for c in conditions if c.get("name") == "language"), "pt"
                )
                found.setdefault(name, {})[language] = variation["text"]
    return found


def language_of_reply(text: str) -> set[str]:
    """The languages in which the domain says exactly this text."""
    return {lang for variants in responses().values() for lang, t in variants.items() if t == text}
