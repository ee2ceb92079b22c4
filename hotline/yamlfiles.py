"""The one YAML loader for files editors change while the services run.

A file is parsed again only when its modification time changes, so an edit to the
service directory, the lexicon or a text is live within a second without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML

T = TypeVar("T")

_lock = threading.Lock()
_cache: dict[tuple[Path, Callable[..., Any] | None], tuple[int, Any]] = {}


def read(path: Path) -> Any:
    """The parsed file (an empty dict for an empty file); uncached."""
    return YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}


def load(path: Path, parse: Callable[[Any], T] | None = None) -> T | Any:
    """`parse(read(path))`, cached until the file changes on disk."""
    mtime = path.stat().st_mtime_ns
    key = (path, parse)
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
    value = read(path)
    if parse is not None:
        value = parse(value)
    with _lock:
        _cache[key] = (mtime, value)
    return value
