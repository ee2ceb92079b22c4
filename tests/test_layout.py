"""The packages form layers (docs/architecture.md): no import points upward, none goes round."""

from __future__ import annotations

import ast
from collections import defaultdict

from hotline.settings import PROJECT_ROOT

# What each package may import besides itself. The core imports nothing of ours.
ALLOWED = {
    "hotline": set(),
    "protection": {"hotline"},
    "referral": {"hotline", "protection"},
    "actions": {"hotline", "protection", "referral"},
    "channels": {"hotline", "protection", "referral"},
    "content": {"hotline", "protection", "referral", "actions"},
    "ops": {"hotline", "protection", "referral", "actions", "channels", "content"},
}


def imports() -> dict[str, set[tuple[str, str]]]:
    """package -> {(module file, imported top-level package)}, function-level imports included."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for package in ALLOWED:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in ALLOWED and top != package:
                        found[package].add((str(path.relative_to(PROJECT_ROOT)), top))
    return found


def test_no_package_imports_one_above_it() -> None:
    upward = sorted(
        f"{where} imports {top}"
        for package, edges in imports().items()
        for where, top in edges
        if top not in ALLOWED[package]
    )
    assert not upward, "\n".join(upward)


def test_the_core_imports_nothing_of_ours() -> None:
    assert not imports().get("hotline")


def test_the_layers_have_no_circle() -> None:
    graph = {package: {top for _, top in edges} for package, edges in imports().items()}
    seen: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, " -> ".join((*path, package))
        if package in seen:
            return
        for other in graph.get(package, ()):
            visit(other, (*path, package))
        seen.add(package)

    for package in ALLOWED:
        visit(package, ())
