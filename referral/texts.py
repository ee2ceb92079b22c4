"""Texts the safety paths choose at run time (data/handoff.yml), in the person's language.

They use the same layout as Rasa responses so editors see one format, but Rasa never
predicts them on its own: the action server decides whether a case was opened, whether
anyone is on duty, or which services match, and the conversation router (channels/router.py)
what a person waiting for a counsellor is told. Both read them here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hotline import yamlfiles
from hotline.settings import get_settings


def _parse(data: Any) -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = {}
    for name, variations in (data.get("responses") or {}).items():
        for variation in variations:
            conditions = variation.get("condition") or []
            language = next((c["value"] for c in conditions if c.get("name") == "language"), "pt")
            texts.setdefault(name, {})[language] = variation["text"]
    return texts


def _load(path: Path) -> dict[str, dict[str, str]]:
    """The texts, re-read when an editor changes the file (live at the next message)."""
    return yamlfiles.load(path, _parse)


def text(name: str, language: str | None, **values: str) -> str:
    """The text in `language` (Portuguese when missing), with {placeholders} filled."""
    variants = _load(get_settings().data_dir / "handoff.yml")[name]
    chosen = variants.get(language or "pt") or variants["pt"]
    return chosen.format(**values) if values else chosen
