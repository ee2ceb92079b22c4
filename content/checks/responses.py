"""Responses and canned replies: every language written, the same placeholders, translated."""

from __future__ import annotations

import re

from content import LANGUAGE_NAMES, LANGUAGES
from content.model import PLACEHOLDER, RUNTIME_RESPONSES, Content, Response
from content.sent import runtime_texts


def check_texts(content: Content, item: Response, kind: str, *, slots: set[str] | None) -> None:
    """Every language present and non-empty, the Portuguese placeholders, translated."""
    label = f"{kind}{item.name}"
    for language in LANGUAGES:
        if language not in item.texts:
            content.error(
                item.path,
                item.line,
                f"{label} has no {LANGUAGE_NAMES[language]} ({language}) text; "
                f"{_how_to_add(language, kind)}",
            )
    for language, text in item.texts.items():
        if language not in LANGUAGES:
            content.error(
                item.path,
                text.line,
                f"{label} has text for '{language}', which is not "
                f"a hotline language; use {', '.join(LANGUAGES)}",
            )
        elif not text.text.strip():
            content.error(
                item.path,
                text.line,
                f"{label} [{language}] is empty; write the {LANGUAGE_NAMES[language]} text",
            )
    _check_placeholders(content, item, label, slots)
    _check_translated(content, item, label)


def _how_to_add(language: str, kind: str) -> str:
    if kind:
        return f"add `{language}: ...`"
    if language == "pt":
        return "add a variation with no condition (the Portuguese text)"
    return f"add a variation with `condition: [{{type: slot, name: language, value: {language}}}]`"


def _check_placeholders(
    content: Content, item: Response, label: str, slots: set[str] | None
) -> None:
    pt = item.texts.get("pt")
    reference = set(PLACEHOLDER.findall(pt.text)) if pt else None
    for language, text in item.texts.items():
        found = set(PLACEHOLDER.findall(text.text))
        if slots is not None:
            for name in sorted(found - slots):
                content.error(
                    item.path,
                    text.line,
                    f"{label} [{language}] uses {{{name}}} but there is no slot '{name}' in "
                    "bot/core.yml; fix the spelling or remove it",
                )
        if reference is not None and language != "pt" and found != reference:
            want = ", ".join(f"{{{n}}}" for n in sorted(reference)) or "none"
            have = ", ".join(f"{{{n}}}" for n in sorted(found)) or "none"
            content.error(
                item.path,
                text.line,
                f"{label} [{language}] has placeholders {have} "
                f"but the Portuguese text has {want}; use exactly the same {{…}} "
                "names in every language (never translate what is inside the braces)",
            )


def _check_translated(content: Content, item: Response, label: str) -> None:
    pt = item.texts.get("pt")
    if not pt or not pt.text.strip():
        return
    for language, text in item.texts.items():
        if (
            language != "pt"
            and text.text.strip() == pt.text.strip()
            and re.search(r"[^\W\d_]{3}", text.text)
        ):
            content.warn(
                item.path,
                text.line,
                f"{label} [{language}] is the same as the "
                f"Portuguese text; translate it into {LANGUAGE_NAMES[language]}",
            )


def _check_runtime_names(content: Content) -> None:
    """Every text an action says is in data/handoff.yml, or that action fails at run time."""
    if not (content.root / RUNTIME_RESPONSES).exists():
        content.error(
            RUNTIME_RESPONSES,
            0,
            "the file is missing; the action server's texts for the safety paths "
            "(disclosure, consent, emergency, a child alone, nobody on duty) live there",
        )
        return
    written = {response.name for response in content.runtime_responses}
    for name, actions in runtime_texts().items():
        if name not in written:
            content.error(
                RUNTIME_RESPONSES,
                0,
                f"{name} is missing; {' and '.join(actions)} "
                f"{'says' if len(actions) == 1 else 'say'} it: add it here with its pt, en, fr "
                "and sw texts",
            )


def check(content: Content) -> None:
    for response in content.responses:
        check_texts(content, response, "", slots=content.domain.slots)
    for reply in content.canned:
        check_texts(content, reply, "canned reply ", slots=None)
    for title in content.canned_titles:
        check_texts(content, title, "title of canned reply ", slots=None)
    _check_runtime_names(content)
