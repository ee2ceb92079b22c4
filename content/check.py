"""`hotline content check`: every check over the loaded content, with file:line for each finding."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from content.checks import indicators, keywords, nlu, responses, services, sms, stories
from content.model import Content, Problem, load

# In this order: a response with no text in a language is said before its length is measured.
CHECKS = (
    responses.check,
    sms.check,
    nlu.check,
    stories.check,
    services.check,
    indicators.check,
    keywords.check,
)


def check(root: Path | None = None) -> list[Problem]:
    """Every problem in the content under root (default: this project), errors first."""
    if root is None:
        from hotline.settings import PROJECT_ROOT

        root = PROJECT_ROOT
    return run_checks(load(root))


def run_checks(content: Content) -> list[Problem]:
    """Every problem in already loaded content, errors first."""
    for run in CHECKS:
        run(content)
    unique = list(dict.fromkeys(content.problems))
    return sorted(unique, key=lambda p: (p.severity != "error", p.path, p.line))


def print_problems(problems: list[Problem], out: TextIO) -> int:
    """Write the problems for an editor; the exit status is 1 when any is an error."""
    errors = [p for p in problems if p.severity == "error"]
    out.writelines(f"{problem}\n" for problem in problems)
    warnings = len(problems) - len(errors)
    if errors:
        out.write(f"content check failed: {len(errors)} error(s), {warnings} warning(s)\n")
        return 1
    out.write(f"content check passed ({warnings} warning(s))\n")
    return 0
