"""The risk indicator lexicon: every group has phrases and examples in every language."""

from __future__ import annotations

from ruamel.yaml.comments import CommentedMap

from content import LANGUAGE_NAMES, LANGUAGES
from content.model import INDICATORS, Content, Problem, indicator_groups, is_empty, line_of

# What each indicator group must have in every language: phrases are what the screening
# searches for, examples are the whole messages the risk tests prove are found.
INDICATOR_REQUIRED = {
    "phrases": "phrases (the words searched for)",
    "examples": "examples (whole messages that must be found as this group)",
}


def _missing_languages(
    content: Content, owner: CommentedMap, key: str, what: str, severity: str = "error"
) -> None:
    texts = owner.get(key)
    label = f"indicator group {owner.get('id', '?')}"
    if not isinstance(texts, dict):
        content.problems.append(
            Problem(
                INDICATORS,
                line_of(owner, key) if key in owner else line_of(owner),
                f"{label} has no {key}; add `{key}:` with {what} under {', '.join(LANGUAGES)}",
                severity,
            )
        )
        return
    for language in LANGUAGES:
        if language not in texts or is_empty(texts[language]):
            content.problems.append(
                Problem(
                    INDICATORS,
                    line_of(texts, language) if language in texts else line_of(owner, key),
                    f"{label} has no {LANGUAGE_NAMES[language]} ({language}) {key}; add "
                    f"`{language}:` under `{key}:` with {what} as people write them in "
                    f"{LANGUAGE_NAMES[language]}",
                    severity,
                )
            )
    for language in texts:
        if str(language) not in LANGUAGES:
            content.problems.append(
                Problem(
                    INDICATORS,
                    line_of(texts, language),
                    f"{label}: '{language}' under `{key}:` is not a hotline language; use "
                    f"{', '.join(LANGUAGES)}",
                )
            )


def check(content: Content) -> None:
    data = content.indicators
    if data is None:
        return
    groups = indicator_groups(data)
    if not groups:
        content.error(
            INDICATORS,
            1,
            "no indicator groups found; the file needs `groups:` followed by `- id: ...` "
            "entries with phrases and examples per language",
        )
        return
    seen: dict[str, int] = {}
    for group in groups:
        gid = str(group.get("id") or "")
        if not gid:
            content.error(
                INDICATORS,
                line_of(group),
                "an indicator group has no id; add `id:` (lowercase words joined by _)",
            )
        elif gid in seen:
            content.error(
                INDICATORS,
                line_of(group),
                f"indicator group id {gid} is already used at line {seen[gid]}; "
                "merge the two groups or rename one",
            )
        seen.setdefault(gid, line_of(group))
        for key, what in INDICATOR_REQUIRED.items():
            _missing_languages(content, group, key, what)
        if "label" in group:
            _missing_languages(content, group, "label", "the group's name")
    # Context words (negations, "my sister" …) decide how phrases are read; a language
    # without them is screened less well, but still screened.
    context = data.get("context") if isinstance(data, dict) else None
    if isinstance(context, dict):
        for name, texts in context.items():
            if not isinstance(texts, dict):
                continue
            for language in LANGUAGES:
                if language not in texts or is_empty(texts[language]):
                    content.warn(
                        INDICATORS,
                        line_of(context, name),
                        f"context {name} has no {LANGUAGE_NAMES[language]} ({language}) words; "
                        f"add `{language}:` so messages in {LANGUAGE_NAMES[language]} are "
                        "read as well as the others",
                    )
