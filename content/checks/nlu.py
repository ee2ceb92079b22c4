"""NLU examples: enough of each intent in each language, none under two intents."""

from __future__ import annotations

from content import LANGUAGE_NAMES, LANGUAGES
from content.model import Content, Example, normalise_example

# These intents are where a person at risk shows up, so the model needs more examples.
SAFETY_INTENTS = ("report_exploitation", "report_third_party", "emergency", "child_alone")
SAFETY_MIN_EXAMPLES = 25
MIN_EXAMPLES = 12

# Rasa 3.6's own intents and actions: stories may name them without declaring them.
DEFAULT_INTENTS = {"nlu_fallback", "restart", "back", "out_of_scope", "session_start"}


def required_examples(intent: str) -> int:
    return SAFETY_MIN_EXAMPLES if intent in SAFETY_INTENTS else MIN_EXAMPLES


def check(content: Content) -> None:
    intents = content.domain.intents
    counts = content.example_counts
    first_place: dict[tuple[str, str], tuple[str, int]] = {}
    # One multilingual model: the same words under two intents conflict in any language,
    # while the same words twice under one intent are only a wasted line in that language.
    first_by_text: dict[str, Example] = {}
    same_intent: dict[tuple[str, str, str], Example] = {}
    unknown_reported: set[tuple[str, str]] = set()
    for example in content.examples:
        key = (example.intent, example.language)
        unknown = example.intent not in intents and example.intent not in DEFAULT_INTENTS
        if unknown and (example.intent, example.path) not in unknown_reported:
            unknown_reported.add((example.intent, example.path))
            content.error(
                example.path,
                example.line,
                f"intent {example.intent} is not in "
                "bot/core.yml; add it under `intents:` there or fix the spelling",
            )
        if not example.text:
            content.error(
                example.path,
                example.line,
                f"an example of {example.intent} is empty; "
                "write a sentence after `- ` or delete the line",
            )
            continue
        first_place.setdefault(key, (example.path, example.line))
        normal = normalise_example(example.text)
        earlier = first_by_text.setdefault(normal, example)
        if earlier.intent != example.intent:
            content.error(
                example.path,
                example.line,
                f"example '{example.text}' is under "
                f"{example.intent} here and under {earlier.intent} at "
                f"{earlier.path}:{earlier.line}; the model cannot learn both: keep it "
                "under the one intent it means",
            )
            continue
        # Within one intent only exact repeats are wasted: PESSOA and pessoa differ to the
        # model (the lexical featurizer sees the capitals), so both may stay.
        exact = " ".join(example.text.split())
        twin = same_intent.setdefault((exact, example.intent, example.language), example)
        if twin is not example:
            content.warn(
                example.path,
                example.line,
                f"example '{example.text}' of "
                f"{example.intent} is already at {twin.path}:{twin.line}; "
                "delete one (it does not count twice)",
            )
            continue
        counts[key] = counts.get(key, 0) + 1
    with_examples = {language for _, language in counts}
    for language in LANGUAGES:
        if language not in with_examples:
            content.error(
                f"data/nlu/{language}",
                0,
                f"there are no {LANGUAGE_NAMES[language]} "
                f"examples; create data/nlu/{language}/*.yml with at least "
                f"{MIN_EXAMPLES} examples of every intent ({SAFETY_MIN_EXAMPLES} for "
                f"{', '.join(SAFETY_INTENTS)})",
            )
    for intent in intents:
        for language in LANGUAGES:
            if language not in with_examples:
                continue
            have = counts.get((intent, language), 0)
            need = required_examples(intent)
            if have >= need:
                continue
            path, line = first_place.get((intent, language), (f"data/nlu/{language}", 0))
            content.error(
                path,
                line,
                f"intent {intent} has {have} {LANGUAGE_NAMES[language]} "
                f"example{'s' if have != 1 else ''}; it needs at least {need}: add "
                f"{need - have} more different ways people say it in data/nlu/{language}/",
            )
