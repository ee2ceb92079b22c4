"""The content editors' files loaded once, every text with the file and line it was written on.

Every check, the coverage report, the release notes and the translators' spreadsheet read
the content through this model, so a finding always points at the line to edit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from content import LANGUAGES

CANNED_REPLIES = "data/canned_replies.yml"
# Texts the action server picks at run time: same layout as bot/*.yml, but not Rasa's domain.
RUNTIME_RESPONSES = "data/handoff.yml"
SERVICES = "data/services.yml"
INDICATORS = "data/risk/indicators.yml"
KEYWORDS = "data/keywords.yml"
STORY_FOLDERS = ("data/stories", "data/rules", "tests/stories")
# The per-language texts of a service, as a translator sees them.
SERVICE_TEXT_FIELDS = ("name", "hours")
# A slot filled in at run time, e.g. {next_shift}; Rasa and the action server fill the same way.
PLACEHOLDER = re.compile(r"{(\w+)}")


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
    """A text in every language: a bot response, a canned reply, a channel note, a service name.

    `part` tells two texts of one entry apart (a canned reply's "title", a service's "name").
    """

    name: str
    path: str
    line: int
    texts: dict[str, Text] = field(default_factory=dict)
    part: str = ""


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


def value_line(node: Any, key: Any) -> int:
    """1-based line where the value of `key` starts (a block scalar starts on the next line)."""
    try:
        return node.lc.value(key)[0] + 1
    except (AttributeError, KeyError, TypeError):
        return line_of(node, key)


# ---------------------------------------------------------------- loading


def language_of(variation: dict[Any, Any]) -> str | None:
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
    content: Content, rel: str, data: dict[Any, Any], seen: dict[str, str]
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
    content: Content, rel: str, responses: Any, name: str, variations: Any
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
            reply = Response(reply_id, CANNED_REPLIES, line, part="" if key == "text" else key)
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


def _texts_of(node: dict[Any, Any], item: Response) -> Response:
    for language, text in node.items():
        if isinstance(text, str):
            item.texts[str(language)] = Text(text, value_line(node, language))
    return item


def keyword_texts(content: Content) -> list[Response]:
    """The notes the channel sends itself (`texts:` in data/keywords.yml)."""
    data = content.keywords
    texts = data.get("texts") if isinstance(data, dict) else None
    if not isinstance(texts, dict):
        return []
    return [
        _texts_of(by_language, Response(str(name), KEYWORDS, line_of(texts, name)))
        for name, by_language in texts.items()
        if isinstance(by_language, dict)
    ]


def service_texts(content: Content) -> list[Response]:
    """Each service's name and hours per language, as the service list shows them."""
    found = []
    for service, _line in content.services:
        if not isinstance(service, dict) or not service.get("id"):
            continue
        for key in SERVICE_TEXT_FIELDS:
            node = service.get(key)
            if isinstance(node, dict):
                item = Response(str(service["id"]), SERVICES, line_of(service, key), part=key)
                found.append(_texts_of(node, item))
    return found


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


def indicator_groups(data: Any) -> list[Any]:
    """The groups of the risk indicator lexicon, or [] when the file has none."""
    groups = data.get("groups") if isinstance(data, dict) else None
    return [g for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []
