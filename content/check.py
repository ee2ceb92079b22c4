"""Reads the content editors' files and says what is missing, too long or wrong, with file:line."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from content import LANGUAGE_NAMES, LANGUAGES

MAX_SEGMENTS = 3
# Characters three concatenated SMS can carry: 3 x 153 GSM-7 septets or 3 x 67 UCS-2 units.
MAX_GSM_UNITS = MAX_SEGMENTS * 153
MAX_UCS2_UNITS = MAX_SEGMENTS * 67
GSM_EXTENSION = set("^{}\\[~]|€\f")

# These intents are where a person at risk shows up, so the model needs more examples.
SAFETY_INTENTS = ("report_exploitation", "report_third_party", "emergency", "child_alone")
SAFETY_MIN_EXAMPLES = 25
MIN_EXAMPLES = 12

# Rasa 3.6's own intents and actions: stories may name them without declaring them.
DEFAULT_INTENTS = {"nlu_fallback", "restart", "back", "out_of_scope", "session_start"}
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

# A slot's value is only known at run time; measure the length with a realistic long value.
PLACEHOLDER_SAMPLES = {
    "next_shift": {
        # The longest values referral/rota.py writes in each language.
        "pt": "segunda-feira às 06:00",
        "en": "Wednesday at 06:00",
        "fr": "la prochaine permanence",
        "sw": "Jumatatu saa 06:00",
    },
}
DEFAULT_PLACEHOLDER_SAMPLE = "x" * 20
PLACEHOLDER = re.compile(r"{(\w+)}")
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
SHORT_CODE = re.compile(r"^\d{3,6}$")
SERVICE_REQUIRED = ("id", "type", "province", "name")

CANNED_REPLIES = "data/canned_replies.yml"
# Texts the action server picks at run time: same layout as bot/*.yml, but not Rasa's domain.
RUNTIME_RESPONSES = "data/handoff.yml"
SERVICES = "data/services.yml"
INDICATORS = "data/risk/indicators.yml"
KEYWORDS = "data/keywords.yml"
STORY_FOLDERS = ("data/stories", "data/rules", "tests/stories")


@dataclass(frozen=True)
class Problem:
    """One finding: where it is, what is wrong and how to fix it."""

    path: str
    line: int
    message: str
    severity: str = "error"  # "error" fails the check, "warning" does not

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


@dataclass
class Text:
    """One language's text and the line it is on."""

    text: str
    line: int


@dataclass
class Response:
    """A bot response (or a canned reply) with its text per language."""

    name: str
    path: str
    line: int
    texts: dict[str, Text] = field(default_factory=dict)


@dataclass
class Example:
    text: str
    intent: str
    language: str
    path: str
    line: int


@dataclass
class Domain:
    intents: dict[str, tuple[str, int]] = field(default_factory=dict)
    actions: set[str] = field(default_factory=set)
    slots: set[str] = field(default_factory=set)
    forms: set[str] = field(default_factory=set)
    responses: list[Response] = field(default_factory=list)


@dataclass
class Content:
    """Everything the checks and the report read, loaded once."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    domain: Domain = field(default_factory=Domain)
    examples: list[Example] = field(default_factory=list)
    nlu_languages: set[str] = field(default_factory=set)
    runtime_responses: list[Response] = field(default_factory=list)
    canned: list[Response] = field(default_factory=list)
    canned_titles: list[Response] = field(default_factory=list)
    services: list[tuple[Any, int]] = field(default_factory=list)
    indicators: Any = None
    keywords: Any = None
    # (intent, language) -> distinct examples, filled by the NLU check.
    example_counts: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def responses(self) -> list[Response]:
        """Every response an editor writes: Rasa's domain, then the action server's texts."""
        return [*self.domain.responses, *self.runtime_responses]

    def files(self, folder: str) -> list[Path]:
        base = self.root / folder
        return sorted([*base.glob("*.yml"), *base.glob("*.yaml")]) if base.is_dir() else []

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def error(self, path: str, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message, "error"))

    def warn(self, path: str, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message, "warning"))


# ---------------------------------------------------------------- YAML with line numbers


def yaml_round_trip() -> YAML:
    """The loader and dumper that keep comments, order, quotes and this project's layout."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap an editor's long line
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def load_yaml(content: Content, rel: str) -> Any:
    """Load one file; a syntax error becomes a Problem and None."""
    path = content.root / rel
    try:
        return yaml_round_trip().load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        content.error(
            rel,
            line,
            f"the YAML cannot be read ({exc.problem or exc.context}); "
            "check the indentation and the quotes on this line and the one above",
        )
    except (YAMLError, UnicodeDecodeError) as exc:
        content.error(rel, 0, f"the file cannot be read ({exc}); save it as UTF-8 YAML")
    return None


def line_of(node: Any, key: Any = None) -> int:
    """1-based line of a node, or of one key (mapping) or item (sequence) in it."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return 0
    if key is None:
        return lc.line + 1
    if isinstance(node, CommentedMap) and key in node:
        return lc.key(key)[0] + 1
    if isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
        return lc.item(key)[0] + 1
    return lc.line + 1


def value_line(node: CommentedMap, key: str) -> int:
    """1-based line where the value of `key` starts (a block scalar starts on the next line)."""
    try:
        return node.lc.value(key)[0] + 1
    except (AttributeError, KeyError, TypeError):
        return line_of(node, key)


# ---------------------------------------------------------------- loading


def language_of(variation: CommentedMap) -> str | None:
    """The language a response variation is for: its `language` slot condition, else Portuguese."""
    for condition in variation.get("condition") or []:
        if isinstance(condition, dict) and condition.get("name") == "language":
            return str(condition.get("value"))
    return "pt"


def _load_domain(content: Content) -> None:
    domain = content.domain
    seen_responses: dict[str, str] = {}
    files = content.files("bot")
    if not files:
        content.error("bot", 0, "no domain files found; the domain lives in bot/*.yml")
    for path in files:
        rel = content.rel(path)
        data = load_yaml(content, rel)
        if not isinstance(data, dict):
            continue
        for index, item in enumerate(data.get("intents") or []):
            name = next(iter(item)) if isinstance(item, dict) else str(item)
            domain.intents.setdefault(name, (rel, line_of(data["intents"], index)))
        domain.actions.update(str(a) for a in data.get("actions") or [])
        domain.slots.update(str(s) for s in data.get("slots") or {})
        domain.forms.update(str(f) for f in data.get("forms") or {})
        domain.responses.extend(_load_responses(content, rel, data, seen_responses))
    if (content.root / RUNTIME_RESPONSES).exists():
        data = load_yaml(content, RUNTIME_RESPONSES)
        if isinstance(data, dict):
            content.runtime_responses.extend(
                _load_responses(content, RUNTIME_RESPONSES, data, seen_responses)
            )


def _load_responses(
    content: Content, rel: str, data: CommentedMap, seen: dict[str, str]
) -> list[Response]:
    found = []
    responses = data.get("responses") or {}
    for name, variations in responses.items():
        where = f"{rel}:{line_of(responses, name)}"
        if name in seen:
            content.error(
                rel,
                line_of(responses, name),
                f"{name} is also defined at {seen[name]}; keep one and delete the other",
            )
            continue
        seen[name] = where
        found.append(_load_response(content, rel, responses, name, variations))
    return found


def _load_response(
    content: Content, rel: str, responses: CommentedMap, name: str, variations: Any
) -> Response:
    response = Response(name, rel, line_of(responses, name))
    if not isinstance(variations, list):
        content.error(
            rel,
            response.line,
            f"{name} must be a list of variations (`- text: ...`), one per language",
        )
        return response
    for index, variation in enumerate(variations):
        line = line_of(variations, index)
        if not isinstance(variation, dict):
            content.error(rel, line, f"{name}: each variation needs `text:`")
            continue
        language = language_of(variation)
        if language not in LANGUAGES:
            content.error(
                rel,
                line,
                f"{name} has a variation for language '{language}'; "
                f"use one of {', '.join(LANGUAGES)}",
            )
            continue
        text = variation.get("text")
        if language in response.texts:
            first = response.texts[language].line
            content.warn(
                rel,
                line,
                f"{name} has a second {language} variation (first at line "
                f"{first}); Rasa picks one at random and the spreadsheet shows only "
                "the first; keep one unless you want the variety",
            )
            continue
        response.texts[language] = Text(
            "" if text is None else str(text),
            value_line(variation, "text") if "text" in variation else line,
        )
    return response


def _example_lines(block: str, first_line: int) -> Iterator[tuple[str, int]]:
    for offset, raw in enumerate(block.split("\n")):
        stripped = raw.strip()
        if stripped.startswith("- "):
            yield stripped[2:].strip(), first_line + offset
        elif stripped == "-":
            yield "", first_line + offset


ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def normalise_example(text: str) -> str:
    """What the model sees: entity annotations, case, spacing and end punctuation do not count."""
    text = ANNOTATION.sub(r"\1", text)
    text = unicodedata.normalize("NFC", text).casefold()
    return " ".join(text.split()).strip(" .!?¿¡,;:\"'")


def _load_nlu(content: Content) -> None:
    base = content.root / "data" / "nlu"
    if not base.is_dir():
        return
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        if folder.name not in LANGUAGES:
            content.warn(
                content.rel(folder),
                0,
                f"'{folder.name}' is not a hotline language; "
                f"NLU examples go in data/nlu/{{{','.join(LANGUAGES)}}}/",
            )
            continue
        content.nlu_languages.add(folder.name)
        for path in sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")]):
            rel = content.rel(path)
            data = load_yaml(content, rel)
            if not isinstance(data, dict):
                continue
            items = data.get("nlu") or []
            for index, item in enumerate(items):
                if not isinstance(item, dict) or "intent" not in item:
                    continue  # synonyms, regexes and lookup tables have no intent
                intent = str(item["intent"])
                block = item.get("examples")
                if not isinstance(block, str):
                    content.error(
                        rel,
                        line_of(items, index),
                        f"intent {intent} has no examples; "
                        "add `examples: |` followed by lines that start with `- `",
                    )
                    continue
                # A block scalar's text starts on the line after `examples: |`.
                first = value_line(item, "examples") + 1
                for text, line in _example_lines(block, first):
                    content.examples.append(Example(text, intent, folder.name, rel, line))


def _load_canned(content: Content) -> None:
    if not (content.root / CANNED_REPLIES).exists():
        return
    data = load_yaml(content, CANNED_REPLIES)
    if data is None:
        return
    replies = data.get("canned_replies") if isinstance(data, dict) else None
    if not isinstance(replies, list):
        content.error(
            CANNED_REPLIES,
            1,
            "the file must start with `canned_replies:` followed by a list of `- id: ...` entries",
        )
        return
    seen: dict[str, int] = {}
    for index, entry in enumerate(replies):
        line = line_of(replies, index)
        if not isinstance(entry, dict) or not entry.get("id"):
            content.error(
                CANNED_REPLIES,
                line,
                "a canned reply needs an `id:` (a short name "
                "like greeting), a `title:` and a `text:` per language",
            )
            continue
        reply_id = str(entry["id"])
        if reply_id in seen:
            content.error(
                CANNED_REPLIES,
                line,
                f"canned reply id '{reply_id}' is already used at "
                f"line {seen[reply_id]}; give each reply its own id",
            )
        seen[reply_id] = line
        for key, target in (("text", content.canned), ("title", content.canned_titles)):
            reply = Response(reply_id, CANNED_REPLIES, line)
            texts = entry.get(key)
            if isinstance(texts, dict):
                for language, text in texts.items():
                    reply.texts[str(language)] = Text(
                        "" if text is None else str(text), value_line(texts, language)
                    )
            elif texts is not None:
                content.error(
                    CANNED_REPLIES,
                    line_of(entry, key),
                    f"canned reply {reply_id}: "
                    f"`{key}:` must give one text per language, e.g. "
                    f"{{pt: ..., en: ..., fr: ..., sw: ...}}",
                )
            target.append(reply)


def load(root: Path) -> Content:
    """Read every content file under root; syntax errors are already in .problems."""
    content = Content(root=Path(root))
    _load_domain(content)
    _load_nlu(content)
    _load_canned(content)
    if (content.root / SERVICES).exists():
        data = load_yaml(content, SERVICES)
        services = data.get("services") if isinstance(data, dict) else None
        if isinstance(services, list):
            content.services = [(s, line_of(services, i)) for i, s in enumerate(services)]
        elif data is not None:
            content.error(
                SERVICES,
                1,
                "the file must start with `services:` followed by a list of `- id: ...` entries",
            )
    if (content.root / INDICATORS).exists():
        content.indicators = load_yaml(content, INDICATORS)
    if (content.root / KEYWORDS).exists():
        content.keywords = load_yaml(content, KEYWORDS)
    return content


# ---------------------------------------------------------------- SMS length


def fill_placeholders(text: str, language: str) -> str:
    """The text as a person would receive it, with each {slot} given a realistic long value."""

    def sample(match: re.Match[str]) -> str:
        return PLACEHOLDER_SAMPLES.get(match.group(1), {}).get(language, DEFAULT_PLACEHOLDER_SAMPLE)

    return PLACEHOLDER.sub(sample, text)


def length_problem(label: str, text: str, language: str) -> str | None:
    """None when the text fits three SMS segments, else what is wrong and how to fix it."""
    from hotline import sms

    sent = fill_placeholders(text, language)
    segments = sms.segment_count(sent)
    if segments <= MAX_SEGMENTS:
        return None
    odd = sms.non_gsm_chars(sent)
    filled = " with {placeholders} filled in" if sent != text else ""
    if odd:
        units = len(sent.encode("utf-16-le")) // 2
        shown = ", ".join(f"'{c}'" for c in sorted(set(odd), key=odd.index)[:6])
        return (
            f"{label} needs {segments} SMS segments (UCS-2 because of {shown}); it has "
            f"{units} characters{filled}: shorten it to {MAX_UCS2_UNITS} characters or fewer"
        )
    units = len(sent) + sum(1 for c in sent if c in GSM_EXTENSION)
    return (
        f"{label} needs {segments} SMS segments (GSM-7); it has {units} characters{filled}, "
        f"counting {{}}[]~^|\\€ as two: shorten it to {MAX_GSM_UNITS} characters or fewer"
    )


# ---------------------------------------------------------------- checks


def _check_texts(
    content: Content,
    item: Response,
    kind: str,
    *,
    sms_length: bool = True,
    slots: set[str] | None = None,
) -> None:
    """Every language present and non-empty, short enough, same placeholders, translated."""
    label = f"{kind}{item.name}"
    for language in LANGUAGES:
        if language not in item.texts:
            how = (
                "add a variation with no condition (the Portuguese text)"
                if language == "pt" and kind == ""
                else f"add a variation with `condition: [{{type: slot, name: language, value: "
                f"{language}}}]`"
                if kind == ""
                else f"add `{language}: ...`"
            )
            content.error(
                item.path,
                item.line,
                f"{label} has no {LANGUAGE_NAMES[language]} ({language}) text; {how}",
            )
    for language, text in item.texts.items():
        if language not in LANGUAGES:
            content.error(
                item.path,
                text.line,
                f"{label} has text for '{language}', which is not "
                f"a hotline language; use {', '.join(LANGUAGES)}",
            )
            continue
        if not text.text.strip():
            content.error(
                item.path,
                text.line,
                f"{label} [{language}] is empty; write the {LANGUAGE_NAMES[language]} text",
            )
            continue
        if sms_length:
            message = length_problem(f"{label} [{language}]", text.text, language)
            if message:
                content.error(item.path, text.line, message)
    pt = item.texts.get("pt")
    reference = set(PLACEHOLDER.findall(pt.text)) if pt else None
    for language, text in item.texts.items():
        found = set(PLACEHOLDER.findall(text.text))
        if slots is not None:
            for name in sorted(found - slots):
                content.error(
                    item.path,
                    text.line,
                    f"{label} [{language}] uses {{{name}}} but "
                    f"there is no slot '{name}' in bot/core.yml; fix the spelling or "
                    "remove it",
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
        if (
            pt
            and language != "pt"
            and text.text.strip()
            and text.text.strip() == pt.text.strip()
            and re.search(r"[^\W\d_]{3}", text.text)
        ):
            content.warn(
                item.path,
                text.line,
                f"{label} [{language}] is the same as the "
                f"Portuguese text; translate it into {LANGUAGE_NAMES[language]}",
            )


def _check_responses(content: Content) -> None:
    for response in content.responses:
        _check_texts(content, response, "", slots=content.domain.slots)


def _check_canned(content: Content) -> None:
    for reply in content.canned:
        _check_texts(content, reply, "canned reply ", slots=None)
    for title in content.canned_titles:
        _check_texts(content, title, "title of canned reply ", sms_length=False)


def required_examples(intent: str) -> int:
    return SAFETY_MIN_EXAMPLES if intent in SAFETY_INTENTS else MIN_EXAMPLES


def _check_nlu(content: Content) -> None:
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


def _check_stories(content: Content) -> None:
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


def _service_label(service: Any, index: int) -> str:
    if isinstance(service, dict) and service.get("id"):
        return f"service {service['id']}"
    return f"service #{index + 1}"


def _check_services(content: Content) -> None:
    seen: dict[str, int] = {}
    for index, (service, line) in enumerate(content.services):
        label = _service_label(service, index)
        if not isinstance(service, dict):
            content.error(
                SERVICES,
                line,
                f"{label} must be a set of fields (id, type, province, "
                "name, phone or short_code, …)",
            )
            continue
        for key in SERVICE_REQUIRED:
            if service.get(key) in (None, ""):
                content.error(SERVICES, line, f"{label} has no {key}; add `{key}: ...`")
        if service.get("id"):
            sid = str(service["id"])
            if sid in seen:
                content.error(
                    SERVICES,
                    line,
                    f"service id {sid} is already used at line "
                    f"{seen[sid]}; give each service its own id",
                )
            seen[sid] = line
        name = service.get("name")
        if isinstance(name, dict):
            _check_service_texts(content, service, "name", label)
        elif name:
            content.error(
                SERVICES,
                line_of(service, "name"),
                f"{label}: the name must be given "
                "per language, e.g. name: {pt: ..., en: ..., fr: ..., sw: ...}",
            )
        if isinstance(service.get("hours"), dict):
            _check_service_texts(content, service, "hours", label)
        _check_service_phone(content, service, label, line)
        verified = service.get("verified")
        if verified is not True:
            content.warn(
                SERVICES,
                line_of(service, "verified") if "verified" in service else line,
                f"{label} is not verified; before launch call it, confirm the hours, "
                "then set `verified: true` and write who checked it and when in `source:`",
            )
        elif not service.get("source"):
            content.warn(
                SERVICES,
                line,
                f"{label} is verified but has no source; add "
                '`source: "called by NAME on YYYY-MM-DD"`',
            )


def _check_service_texts(content: Content, service: CommentedMap, key: str, label: str) -> None:
    texts = service[key]
    for language in LANGUAGES:
        value = texts.get(language)
        if value is None or not str(value).strip():
            content.error(
                SERVICES,
                line_of(service, key),
                f"{label}: {key} has no "
                f"{LANGUAGE_NAMES[language]} ({language}) text; add `{language}: ...`",
            )


def _check_service_phone(content: Content, service: CommentedMap, label: str, line: int) -> None:
    phone = service.get("phone")
    code = service.get("short_code")
    if phone in (None, "") and code in (None, ""):
        content.error(
            SERVICES,
            line,
            f'{label} has no phone; add `phone: "+258..."` (E.164) or, '
            'for a national short number like 116, `short_code: "116"`',
        )
    if phone not in (None, ""):
        text = str(phone)
        if not E164.match(text):
            digits = re.sub(r"\D", "", text)
            hint = (
                f"; a short number like {digits} goes in `short_code:`"
                if SHORT_CODE.match(digits)
                else ""
            )
            content.error(
                SERVICES,
                line_of(service, "phone"),
                f"{label}: phone '{text}' is not "
                "in E.164; write + country code and number with no spaces or dashes, "
                f'in quotes, e.g. "+25821310779"{hint}',
            )
    if code not in (None, "") and not SHORT_CODE.match(str(code)):
        content.error(
            SERVICES,
            line_of(service, "short_code"),
            f"{label}: short_code '{code}' "
            'must be 3 to 6 digits, in quotes, e.g. "116"; full numbers go in '
            "`phone:` in E.164",
        )


# ----- per-language blocks in the indicator lexicon and the keywords file


def is_language_map(node: Any) -> bool:
    """A mapping keyed by language codes (at least two of them, or one and nothing else)."""
    if not isinstance(node, dict) or not node:
        return False
    keys = {str(k) for k in node}
    known = keys & set(LANGUAGES)
    return len(known) >= 2 or (len(known) == 1 and keys == known)


def language_maps(node: Any, trail: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path of keys, mapping) for every per-language mapping in a YAML tree."""
    if is_language_map(node):
        yield trail, node
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield from language_maps(value, (*trail, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from language_maps(value, (*trail, _item_name(value) or f"#{index + 1}"))


def _item_name(item: Any) -> str | None:
    """How a list entry names itself (id, name or group), for messages."""
    if not isinstance(item, dict):
        return None
    for key in ("id", "name", "group"):
        if isinstance(item.get(key), str) and item[key]:
            return item[key]
    return None


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict)):
        return not value or all(
            is_empty(v) for v in (value.values() if isinstance(value, dict) else value)
        )
    return False


# What each indicator group must have in every language: phrases are what the screening
# searches for, examples are the whole messages the risk tests prove are found.
INDICATOR_REQUIRED = {
    "phrases": "phrases (the words searched for)",
    "examples": "examples (whole messages that must be found as this group)",
}


def indicator_groups(data: Any) -> list[CommentedMap]:
    """The groups of the risk indicator lexicon, or [] when the file has none."""
    groups = data.get("groups") if isinstance(data, dict) else None
    return [g for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []


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


def _check_indicators(content: Content) -> None:
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


def _check_keywords(content: Content) -> None:
    data = content.keywords
    if data is None:
        return
    for trail, texts in language_maps(data):
        where = " > ".join(trail) or "keywords"
        for language in LANGUAGES:
            if language not in texts or is_empty(texts[language]):
                content.error(
                    KEYWORDS,
                    line_of(texts, language) if language in texts else line_of(texts),
                    f"{where} has no "
                    f"{LANGUAGE_NAMES[language]} ({language}) entry; add "
                    f"`{language}: ...`",
                )
                continue
            value = texts[language]
            if isinstance(value, str):
                message = length_problem(f"{where} [{language}]", str(value), language)
                if message:
                    content.error(KEYWORDS, line_of(texts, language), message)
    _check_keyword_collisions(content, data)


def _keyword_key(word: str) -> str:
    """How the channel compares keywords: no case, no accents, no end punctuation."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    return " ".join(plain.casefold().split()).strip(" .!?,;:")


def _check_keyword_collisions(content: Content, data: Any) -> None:
    """A word under two keyword sets (STOP and START) could not be answered rightly."""
    sets = data.get("keywords") if isinstance(data, dict) else None
    if not isinstance(sets, dict):
        return
    owner: dict[str, tuple[str, int]] = {}
    for name, by_language in sets.items():
        if not is_language_map(by_language):
            continue
        for language, words in by_language.items():
            line = line_of(by_language, language)
            for word in words if isinstance(words, list) else [words]:
                key = _keyword_key(str(word))
                first = owner.setdefault(key, (str(name), line))
                if first[0] != str(name):
                    content.error(
                        KEYWORDS,
                        line,
                        f"keyword '{word}' is under {name} here and under {first[0]} at line "
                        f"{first[1]} (case and accents do not count); keep it under one",
                    )


def check(root: Path | None = None) -> list[Problem]:
    """Every problem in the content under root (default: this project), errors first."""
    if root is None:
        from hotline.settings import PROJECT_ROOT

        root = PROJECT_ROOT
    return run_checks(load(root))


def run_checks(content: Content) -> list[Problem]:
    """Every problem in already loaded content, errors first."""
    _check_responses(content)
    _check_canned(content)
    _check_nlu(content)
    _check_stories(content)
    _check_services(content)
    _check_indicators(content)
    _check_keywords(content)
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
