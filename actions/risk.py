"""Risk screening over a whole conversation: NLU intents plus the indicator lexicon in data/risk/.

Plain functions, no Rasa: the action server, `hotline triage` and the tests all call `assess`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ruamel.yaml import YAML

from hotline.settings import get_settings

log = logging.getLogger(__name__)

Level = Literal["none", "elevated", "high", "emergency"]
Action = Literal["none", "offer", "handoff"]
LEVELS: tuple[Level, ...] = ("none", "elevated", "high", "emergency")
LANGUAGES = ("pt", "en", "fr", "sw")

# An intent counts when the model is at least this sure; below it a disclosure intent only
# raises the level to elevated, so a shaky guess never hands a person off on its own.
EMERGENCY_CONFIDENCE = 0.6
DISCLOSURE_CONFIDENCE = 0.5
DISCLOSURE_INTENTS = ("report_exploitation", "report_third_party", "child_alone")
INFORMATIONAL_INTENTS = ("ask_trafficking_info", "ask_job_offer_safety")
# Indicator weights add up over distinct groups; this much is a disclosure (high).
HIGH_SCORE = 2
# A negation this many words before a phrase cancels it ("ninguem me bate").
NEGATION_WINDOW = 3

# What a counsellor reads when the level came from the model rather than a phrase.
_INTENT_LABELS = {
    "emergency": {"pt": "perigo agora", "en": "danger now", "fr": "danger immédiat", "sw": "hatari sasa"},
    "report_exploitation": {
        "pt": "relata exploração", "en": "reports exploitation",
        "fr": "signale une exploitation", "sw": "anaripoti unyonyaji",
    },
    "report_third_party": {
        "pt": "relata outra pessoa em risco", "en": "reports another person at risk",
        "fr": "signale une autre personne en danger", "sw": "anaripoti mtu mwingine hatarini",
    },
    "child_alone": {"pt": "criança sozinha", "en": "child alone", "fr": "enfant seul", "sw": "mtoto peke yake"},
}


@dataclass(frozen=True)
class Indicator:
    """One recognised indicator: its group, the message (0 = oldest) and the words that carry it."""

    name: str
    message_index: int
    phrase: str


@dataclass(frozen=True)
class Assessment:
    level: Level
    indicators: tuple[Indicator, ...]
    about_other: bool
    # Intents that raised the level on their own (e.g. "emergency"), for the counsellor.
    intents: tuple[str, ...] = ()

    def summary(self, language: str = "en") -> str:
        """One line on why, e.g. "passport taken; not free to leave"."""
        labels = lexicon().labels
        parts: list[str] = []
        for indicator in self.indicators:
            label = labels.get(indicator.name, {})
            text = label.get(language) or label.get("en") or indicator.name
            if text not in parts:
                parts.append(text)
        # The model's reasons add to the phrases only where they say more: danger now always,
        # a disclosure when no phrase was recognised.
        for intent in self.intents:
            if parts and intent != "emergency":
                continue
            label = _INTENT_LABELS.get(intent, {})
            text = label.get(language) or label.get("en") or intent
            if text not in parts:
                parts.append(text)
        return "; ".join(parts)


# ---------------------------------------------------------------- text and phrase patterns


def normalise(text: str) -> str:
    """Lower case, no accents, punctuation as spaces, one character for one character.

    Keeping the length lets a match be shown to the counsellor exactly as it was written.
    """
    out = []
    for char in text:
        plain = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        plain = plain.lower()
        if len(plain) != 1:
            plain = plain[:1] or " "
        out.append(plain if plain.isalnum() else " ")
    return "".join(out)


_PLACEHOLDERS = {
    "{age}": r"(?:[5-9]|1[0-7])",
    "{hours}": r"(?:1[2-9]|2[0-4])",
    "{n}": r"\d+",
}
_GAP = r"(?:\W+\w+){0,4}"


def _word(token: str) -> str:
    alternatives = []
    for option in token.split("/"):
        if not option:
            continue
        if option in _PLACEHOLDERS:
            alternatives.append(_PLACEHOLDERS[option])
            continue
        alternatives.append(re.escape(option).replace(r"\*", r"\w*"))
    return r"\b(?:" + "|".join(alternatives) + r")\b"


def _split(pattern: str) -> list[str]:
    """Tokens of a phrase; (...) and [...] groups stay whole."""
    tokens, depth, current = [], 0, ""
    for char in pattern:
        if char in "([":
            depth += 1
            if depth > 1:
                raise ValueError(f"brackets inside brackets in phrase: {pattern!r}")
        elif char in ")]":
            depth -= 1
        if char == " " and depth == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise ValueError(f"unbalanced brackets in phrase: {pattern!r}")
    if current:
        tokens.append(current)
    return tokens


def _clean_pattern(pattern: str) -> str:
    """Editors may write accents, capitals and apostrophes; the text is matched without them."""
    kept = [char if char in "*/()[]|{}.? " else normalise(char) for char in pattern]
    return " ".join("".join(kept).split())


def compile_phrase(pattern: str) -> str:
    """A lexicon phrase as a regular expression over normalised text (syntax: indicators.yml)."""
    parts: list[tuple[str, bool]] = []  # (regex, optional)
    for token in _split(_clean_pattern(pattern)):
        optional = False
        if token.endswith(")?"):
            token, optional = token[:-1], True
        if token == "...":
            parts.append((_GAP, True))
        elif token.startswith("(") and token.endswith(")"):
            options = [compile_phrase(o) for o in token[1:-1].split("|") if o.strip()]
            parts.append(("(?:" + "|".join(options) + ")", optional))
        elif token.startswith("[") and token.endswith("]"):
            inner = token[1:-1].strip()
            regex = compile_phrase(inner) if " " in inner else _word(inner)
            parts.append((regex, True))
        elif "?" in token or any(c in token for c in "()[]|"):
            raise ValueError(f"cannot read {token!r} in phrase: {pattern!r}")
        else:
            parts.append((_word(token), False))
    regex, started = "", False
    for part, optional in parts:
        if part == _GAP:
            regex += _GAP if started else ""
        elif optional:
            # A leading optional word carries its own separator, so the next word needs none.
            regex += rf"(?:\W+{part})?" if started else rf"(?:{part}\W+)?"
        else:
            regex += (r"\W+" if started else "") + part
            started = True
    return regex


def _compile_many(phrases: list[str]) -> re.Pattern[str] | None:
    regexes = [compile_phrase(str(p)) for p in phrases if str(p).strip()]
    return re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None


# ---------------------------------------------------------------- the lexicon


@dataclass(frozen=True)
class Group:
    name: str
    weight: int
    emergency: bool
    pattern: re.Pattern[str]
    exceptions: re.Pattern[str] | None


@dataclass(frozen=True)
class Lexicon:
    groups: tuple[Group, ...]
    labels: dict[str, dict[str, str]]
    negations: re.Pattern[str] | None
    personal: re.Pattern[str] | None
    third_party: re.Pattern[str] | None
    informational: re.Pattern[str] | None
    hypothetical: re.Pattern[str] | None
    false_alarms: re.Pattern[str] | None
    jokes: re.Pattern[str] | None
    risky_topics: re.Pattern[str] | None
    examples: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def _all_languages(node: object) -> list[str]:
    """Every phrase of a per-language map, whatever the message's language: people mix them."""
    if not isinstance(node, dict):
        return []
    return [str(p) for language in LANGUAGES for p in (node.get(language) or [])]


def load_lexicon(path: Path) -> Lexicon:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    context = data.get("context") or {}
    groups, labels, examples = [], {}, {}
    for entry in data.get("groups") or []:
        name = str(entry["id"])
        pattern = _compile_many(_all_languages(entry.get("phrases")))
        if pattern is None:
            continue
        groups.append(
            Group(
                name=name,
                weight=int(entry.get("weight", 1)),
                emergency=entry.get("level") == "emergency",
                pattern=pattern,
                exceptions=_compile_many(_all_languages(entry.get("exceptions"))),
            )
        )
        labels[name] = {k: str(v) for k, v in (entry.get("label") or {}).items()}
        examples[name] = {k: [str(x) for x in v or []] for k, v in (entry.get("examples") or {}).items()}
    return Lexicon(
        groups=tuple(groups),
        labels=labels,
        negations=_compile_many(_all_languages(context.get("negations"))),
        personal=_compile_many(_all_languages(context.get("personal"))),
        third_party=_compile_many(_all_languages(context.get("third_party"))),
        informational=_compile_many(_all_languages(context.get("informational"))),
        hypothetical=_compile_many(_all_languages(context.get("hypothetical"))),
        false_alarms=_compile_many(_all_languages(context.get("false_alarms"))),
        jokes=_compile_many(_all_languages(context.get("jokes"))),
        risky_topics=_compile_many(_all_languages(context.get("risky_topics"))),
        examples=examples,
    )


_cache: dict[Path, tuple[float, Lexicon]] = {}


def lexicon(path: Path | None = None) -> Lexicon:
    """The lexicon, re-read when an editor changes the file (the action server keeps running)."""
    path = path or get_settings().data_dir / "risk" / "indicators.yml"
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, load_lexicon(path))
        _cache[path] = cached
    return cached[1]


# ---------------------------------------------------------------- one message


@dataclass(frozen=True)
class _Found:
    group: str
    weight: int
    emergency: bool
    phrase: str


@dataclass(frozen=True)
class MessageReading:
    """What one message says, before the conversation is added up."""

    found: tuple[_Found, ...]
    informational: bool
    personal: bool
    third_party: bool
    false_alarm: bool
    risky_topic: bool


def _negated(lex: Lexicon, plain: str, start: int) -> bool:
    if lex.negations is None:
        return False
    before = plain[:start].split()[-NEGATION_WINDOW:]
    window = " ".join(before)
    return bool(window) and lex.negations.search(window) is not None


def read_message(text: str, lex: Lexicon | None = None) -> MessageReading:
    """The indicator phrases in one message, and whether it is a question about others."""
    lex = lex or lexicon()
    plain = normalise(text)
    alarms = [m.span() for m in lex.false_alarms.finditer(plain)] if lex.false_alarms else []
    joking = bool(lex.jokes and lex.jokes.search(plain))
    found: list[_Found] = []
    for group in lex.groups:
        if group.exceptions is not None and group.exceptions.search(plain):
            continue
        if group.emergency and joking:
            continue
        for match in group.pattern.finditer(plain):
            start, end = match.span()
            if _negated(lex, plain, start):
                continue
            if any(a_start < end and start < a_end for a_start, a_end in alarms):
                continue
            found.append(_Found(group.name, group.weight, group.emergency, " ".join(text[start:end].split())))
            break  # one phrase per group and message is enough evidence
    personal = bool(lex.personal and lex.personal.search(plain))
    third_party = bool(lex.third_party and lex.third_party.search(plain))
    hypothetical = bool(lex.hypothetical and lex.hypothetical.search(plain))
    asks = bool(lex.informational and lex.informational.search(plain))
    # A question about how things work, with nobody of the writer's own in it, is not a
    # disclosure; "what if…" is not one either, even with "my" in it.
    informational = hypothetical or (asks and not personal and not third_party)
    risky_topic = bool(lex.risky_topics and lex.risky_topics.search(plain))
    return MessageReading(tuple(found), informational, personal, third_party, bool(alarms) or joking, risky_topic)


# ---------------------------------------------------------------- the conversation


def assess(messages: list[tuple[str, str | None, float]]) -> Assessment:
    """The risk of a whole conversation: each item is (text, intent, confidence), oldest first."""
    lex = lexicon()
    indicators: list[Indicator] = []
    weights: dict[str, int] = {}
    intents: list[str] = []
    elevated = emergency = high_intent = False
    third_party_messages = own_messages = 0
    third_party_intent = False
    someone_else_mentioned = False

    for index, (text, intent, confidence) in enumerate(messages):
        reading = read_message(text or "", lex)
        someone_else_mentioned |= reading.third_party
        sure = confidence >= DISCLOSURE_CONFIDENCE
        asks_info = intent in INFORMATIONAL_INTENTS and sure
        informational = reading.informational or asks_info
        if asks_info or reading.risky_topic:
            elevated = True

        if intent == "emergency" and not reading.false_alarm:
            if confidence >= EMERGENCY_CONFIDENCE:
                emergency = True
                intents.append("emergency")
            else:
                elevated = True
        elif intent in DISCLOSURE_INTENTS:
            if sure:
                high_intent = True
                intents.append(intent)
                third_party_intent |= intent == "report_third_party"
            else:
                elevated = True

        disclosed = False
        for item in reading.found:
            # Danger now counts unless it is plainly a question about how things work; the
            # other indicators also not when the model says the person is asking, not telling.
            if reading.informational or (informational and not item.emergency):
                elevated = True
                continue
            indicators.append(Indicator(item.group, index, item.phrase))
            disclosed = True
            if item.emergency:
                emergency = True
                continue
            weights[item.group] = max(weights.get(item.group, 0), item.weight)
        if disclosed or (intent in DISCLOSURE_INTENTS and sure):
            # "my friend…" then "they took her phone": the later message is still about her.
            if reading.third_party or (someone_else_mentioned and not reading.personal):
                third_party_messages += 1
            else:
                own_messages += 1

    score = sum(weights.values())
    if emergency:
        level: Level = "emergency"
    elif high_intent or score >= HIGH_SCORE:
        level = "high"
    elif elevated or score > 0:
        level = "elevated"
    else:
        level = "none"
    about_other = third_party_intent or (third_party_messages > 0 and third_party_messages >= own_messages)
    unique_intents = tuple(dict.fromkeys(intents))
    return Assessment(level, tuple(indicators), about_other, unique_intents)


def risk_action(assessment: Assessment, offered_since_window: bool, case_open: bool) -> Action:
    """What this turn must do about the risk, whatever the person said last.

    An emergency hands off at once even after an offer was declined; a high risk is offered
    a counsellor once per window (a refusal is respected until something new happens).
    """
    if case_open:
        return "none"
    if assessment.level == "emergency":
        return "handoff"
    if assessment.level == "high" and not offered_since_window:
        return "offer"
    return "none"
