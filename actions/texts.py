"""Texts the action server chooses at run time (data/handoff.yml), in the person's language.

They use the same layout as Rasa responses so editors see one format, but Rasa never
predicts them on its own: only an action decides whether a case was opened, whether
anyone is on duty, or which services match.
"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from hotline.settings import get_settings

_cache: dict[Path, tuple[float, dict[str, dict[str, str]]]] = {}


def _load(path: Path) -> dict[str, dict[str, str]]:
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    texts: dict[str, dict[str, str]] = {}
    for name, variations in (data.get("responses") or {}).items():
        for variation in variations:
            conditions = variation.get("condition") or []
            language = next((c["value"] for c in conditions if c.get("name") == "language"), "pt")
            texts.setdefault(name, {})[language] = variation["text"]
    _cache[path] = (mtime, texts)
    return texts


def text(name: str, language: str | None, **values: str) -> str:
    """The text in `language` (Portuguese when missing), with {placeholders} filled."""
    variants = _load(get_settings().data_dir / "handoff.yml")[name]
    chosen = variants.get(language or "pt") or variants["pt"]
    return chosen.format(**values) if values else chosen
