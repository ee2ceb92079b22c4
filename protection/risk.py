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

# The model's intent is one reading of a message, and a trained classifier is often sure and
# wrong. Its confidence does not tell the two apart at the top: one model read "nina miaka 25"
# as child_alone, "je ne suis pas en danger" as emergency and "my boss doesn't let me leave
# early on Fridays" as report_exploitation, all at 1.00. So a disclosure or emergency intent is
# weighed as evidence, never obeyed on its own (see `_model_evidence`):
# - below these confidences it only raises the level to elevated;
EMERGENCY_CONFIDENCE = 0.6
DISCLOSURE_CONFIDENCE = 0.5
# - at or above them it counts fully (high; emergency for the emergency intent) only when the
#   same message backs it up: an indicator phrase of its own (for danger now, a grave one: weight
#   HIGH_SCORE) or a word of harm said of someone (the lexicon's `harm`: "I am exploited");
# - unbacked, it is one point of evidence (MODEL_HINT_WEIGHT), as much as a weight-1 indicator:
#   with an indicator in another message the conversation is high, alone it is elevated (the
#   bot informs and offers help; a counsellor can still be asked for). Repeated on several
#   messages it is still one point: the same model saying it again is not new evidence;
# - on a question ("how can I get my passport back?") it adds nothing: what counts is what the
#   lexicon finds in the message, as for any message.
# Danger-now phrases in the lexicon are an emergency whatever the model says.
MODEL_HINT_WEIGHT = 1
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
    questions: re.Pattern[str] | None = None
    harm: re.Pattern[str] | None = None


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
        questions=_compile_many(_all_languages(context.get("questions"))),
        harm=_compile_many(_all_languages(context.get("harm"))),
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
    # Asks rather than tells (a "?" or a question form); informational questions are questions too.
    question: bool = False
    # A word of harm said of the writer or of someone close, not negated ("I am exploited").
    harm: bool = False


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
    question = informational or "?" in text or bool(lex.questions and lex.questions.search(plain))
    harm = (personal or third_party) and not informational and any(
        not _negated(lex, plain, match.start()) for match in (lex.harm.finditer(plain) if lex.harm else ())
    )
    return MessageReading(
        tuple(found), informational, personal, third_party, bool(alarms) or joking, risky_topic, question, harm
    )


Evidence = Literal["none", "hint", "full"]


def _model_evidence(reading: MessageReading, backed: bool) -> Evidence:
    """How much a sure disclosure or emergency intent on one message is worth (see the thresholds)."""
    # Asking is not telling; "my battery is dying" or a joke is not a disclosure either, however
    # sure the model is.
    if reading.question or reading.informational or reading.false_alarm:
        return "none"
    if backed or reading.harm:
        return "full"
    return "hint"


# ---------------------------------------------------------------- the conversation


def assess(messages: list[tuple[str, str | None, float]]) -> Assessment:
    """The risk of a whole conversation: each item is (text, intent, confidence), oldest first."""
    lex = lexicon()
    indicators: list[Indicator] = []
    weights: dict[str, int] = {}
    intents: list[str] = []
    elevated = emergency = high_intent = False
    model_hint = ""  # the first intent that counted as a hint only, for the summary
    third_party_messages = own_messages = 0
    third_party_intent = False
    someone_else_mentioned = False

    for index, (text, intent, confidence) in enumerate(messages):
        reading = read_message(text or "", lex)
        someone_else_mentioned |= reading.third_party
        sure = confidence >= DISCLOSURE_CONFIDENCE
        asks_info = intent in INFORMATIONAL_INTENTS and sure
        # The model saying "asking" silences the indicators only on a message that reads as a
        # question: "they promised a cook's job but force me to work in a bar" read as
        # ask_job_offer_safety is still a disclosure.
        informational = reading.informational or (asks_info and reading.question)
        # "I am exploited" with nothing more is not yet a disclosure to act on, but it is not nothing.
        if asks_info or reading.risky_topic or reading.harm:
            elevated = True

        disclosed = grave = False
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
            grave |= item.weight >= HIGH_SCORE

        counted = False
        if intent == "emergency" and not reading.false_alarm:
            if confidence < EMERGENCY_CONFIDENCE:
                elevated = True
            else:
                # Danger now is backed by what is grave on its own (violence, confinement, sexual
                # exploitation), not by any indicator: "they don't pay me" is not an emergency.
                evidence = _model_evidence(reading, grave)
                elevated = True
                if evidence == "full":
                    emergency = True
                    intents.append("emergency")
                elif evidence == "hint":
                    # Danger the message does not back up is still a sign something is wrong:
                    # it weighs like a disclosure the model alone saw.
                    model_hint = model_hint or "emergency"
                counted = evidence != "none"
        elif intent in DISCLOSURE_INTENTS:
            elevated = True
            evidence = _model_evidence(reading, disclosed) if sure else "none"
            if evidence == "full":
                high_intent = True
                intents.append(intent)
            elif evidence == "hint":
                model_hint = model_hint or intent
            counted = evidence != "none"
            third_party_intent |= counted and intent == "report_third_party"

        if disclosed or counted:
            # "my friend…" then "they took her phone": the later message is still about her.
            if reading.third_party or (someone_else_mentioned and not reading.personal):
                third_party_messages += 1
            else:
                own_messages += 1

    score = sum(weights.values())
    if model_hint:
        if 0 < score < HIGH_SCORE and model_hint != "emergency":
            intents.append(model_hint)  # it tipped the conversation over: keep it for the record
        score += MODEL_HINT_WEIGHT
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
