"""Stories and rules: every intent, action, response and slot they name exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ruamel.yaml.comments import CommentedMap

from content.checks.nlu import DEFAULT_INTENTS
from content.model import RUNTIME_RESPONSES, STORY_FOLDERS, Content, line_of, load_yaml

DEFAULT_ACTIONS = {
    "action_listen",
    "action_restart",
    "action_session_start",
    "action_default_fallback",
    "action_deactivate_loop",
    "action_revert_fallback_events",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
    "action_two_stage_fallback",
    "action_unlikely_intent",
    "action_back",
    "action_send_text",
    "action_extract_slots",
    "action_validate_slot_mappings",
}


def _steps(steps: Any) -> Iterator[tuple[Any, Any]]:
    """(mapping, step) for every step, including the ones inside `or:` blocks."""
    if not isinstance(steps, list):
        return
    for step in steps:
        if not isinstance(step, dict):
            continue
        yield steps, step
        if "or" in step:
            yield from _steps(step["or"])


def check(content: Content) -> None:
    domain = content.domain
    intents = set(domain.intents) | DEFAULT_INTENTS
    responses = {r.name for r in domain.responses}
    actions = domain.actions | responses | domain.forms | DEFAULT_ACTIONS
    for folder in STORY_FOLDERS:
        for path in content.files(folder):
            rel = content.rel(path)
            data = load_yaml(content, rel)
            if not isinstance(data, dict):
                continue
            for kind in ("stories", "rules"):
                for entry in data.get(kind) or []:
                    if not isinstance(entry, dict):
                        continue
                    title = entry.get("story") or entry.get("rule") or kind[:-1]
                    for part in ("steps", "condition"):
                        for _, step in _steps(entry.get(part)):
                            _check_step(content, rel, str(title), step, intents, actions)


def _check_step(
    content: Content, rel: str, title: str, step: CommentedMap, intents: set[str], actions: set[str]
) -> None:
    line = line_of(step)
    intent = step.get("intent")
    if intent is not None and str(intent) not in intents:
        content.error(
            rel,
            line,
            f"'{title}' names intent {intent}, which does not exist; use one "
            "from bot/core.yml `intents:` (or add it there with its examples)",
        )
    action = step.get("action")
    if action is not None and str(action) not in actions:
        if str(action) in {r.name for r in content.runtime_responses}:
            fix = (
                f"the action server says it (it is in {RUNTIME_RESPONSES}), not Rasa: name the "
                "action that says it instead, e.g. action_open_case"
            )
        elif str(action).startswith("utter_"):
            fix = "write that response in a bot/*.yml file or fix the name"
        else:
            fix = "add it to `actions:` in bot/core.yml (and the action server) or fix the name"
        content.error(rel, line, f"'{title}' names {action}, which does not exist; {fix}")
    for slot_step in step.get("slot_was_set") or []:
        names = list(slot_step) if isinstance(slot_step, dict) else [str(slot_step)]
        for name in names:
            if name not in content.domain.slots:
                content.error(
                    rel,
                    line,
                    f"'{title}' uses slot {name}, which is not in "
                    "bot/core.yml `slots:`; fix the name",
                )
