"""The lock files hold every package with its hashes, agree with what the project asks for,
and are what the environment was installed from (the Makefile installs nothing else)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, how many hashes), from a pip-compile --generate-hashes file."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in lock.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            found[current] = (match[2], 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return found


def test_every_package_of_both_locks_is_pinned_with_hashes() -> None:
    for lock in ("requirements.lock", "requirements-rasa.lock"):
        locked = pins(ROOT / lock)
        assert len(locked) > 50, lock
        assert all(hashes > 0 for _, hashes in locked.values()), lock


def test_the_locks_hold_what_the_project_asks_for() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    asked = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    locked = pins(ROOT / "requirements.lock")
    for line in asked:
        requirement = Requirement(line)
        version = locked[canonicalize_name(requirement.name)][0]
        assert requirement.specifier.contains(version), (line, version)
    rasa = pins(ROOT / "requirements-rasa.lock")
    for line in (ROOT / "requirements-rasa.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            assert requirement.specifier.contains(rasa[canonicalize_name(requirement.name)][0])


def test_this_environment_is_the_lock() -> None:
    locked = pins(ROOT / "requirements.lock")
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) not in {"hotline", "pip"}
    }
    assert installed == {name: version for name, (version, _) in locked.items()}
