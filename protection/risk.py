"""Risk screening over a whole conversation: NLU intents plus the indicator lexicon in data/risk/.

Plain functions, no Rasa: the action server, `hotline triage` and the tests all call `assess`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hotline import yamlfiles
from hotline.language import LANGUAGES
from hotline.language_request import asked_for
from hotline.settings import get_settings
from hotline.text import fold_aligned

log = logging.getLogger(__name__)

Level = Literal["none", "elevated", "high", "emergency"]
Action = Literal["none", "offer", "handoff"]
LEVELS: tuple[Level, ...] = ("none", "elevated", "high", "emergency")

DISCLOSURE_INTENTS = ("report_exploitation", "report_third_party", "child_alone")
INFORMATIONAL_INTENTS = ("ask_trafficking_info", "ask_job_offer_safety")
# Indicator weights add up over distinct groups; this much is a disclosure (high).
HIGH_SCORE = 2
# A negation this many words before a phrase cancels it ("ninguem me bate").
NEGATION_WINDOW = 3

# What a counsellor reads when the level came from the model rather than a phrase.
_INTENT_LABELS = {
    "emergency": {
        "pt": "perigo agora",
        "en": "danger now",
        "fr": "danger immédiat",
        "sw": "hatari sasa",
    },
    "report_exploitation": {
        "pt": "relata exploração",
        "en": "reports exploitation",
        "fr": "signale une exploitation",
        "sw": "anaripoti unyonyaji",
    },
    "report_third_party": {
        "pt": "relata outra pessoa em risco",
        "en": "reports another person at risk",
        "fr": "signale une autre personne en danger",
        "sw": "anaripoti mtu mwingine hatarini",
    },
    "child_alone": {
        "pt": "criança sozinha",
        "en": "child alone",
        "fr": "enfant seul",
        "sw": "mtoto peke yake",
    },
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
    """Lower case, no accents, punctuation as spaces, one character for one character."""
    return fold_aligned(text)


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
    # Readings of texts already seen with this lexicon: a conversation is re-read every turn.
    readings: dict[str, MessageReading] = field(default_factory=dict, compare=False, repr=False)


def _all_languages(node: object) -> list[str]:
    """Every phrase of a per-language map, whatever the message's language: people mix them."""
    if not isinstance(node, dict):
        return []
    return [str(p) for language in LANGUAGES for p in (node.get(language) or [])]


def load_lexicon(path: Path) -> Lexicon:
    return parse_lexicon(yamlfiles.read(path))


def parse_lexicon(data: dict) -> Lexicon:
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
        examples[name] = {
            k: [str(x) for x in v or []] for k, v in (entry.get("examples") or {}).items()
        }
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


def lexicon(path: Path | None = None) -> Lexicon:
    """The lexicon, re-read when an editor changes the file (the action server keeps running)."""
    path = path or get_settings().data_dir / "risk" / "indicators.yml"
    return yamlfiles.load(path, parse_lexicon)


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


# Enough for every message of the conversations in flight; bounded so a long-running action
# server does not grow without end.
_READINGS_KEPT = 20_000


def read_message(text: str, lex: Lexicon | None = None) -> MessageReading:
    """The indicator phrases in one message, and whether it is a question about others."""
    lex = lex or lexicon()
    cached = lex.readings.get(text)
    if cached is None:
        if len(lex.readings) >= _READINGS_KEPT:
            lex.readings.clear()
        cached = lex.readings[text] = _read_message(text, lex)
    return cached


def _read_message(text: str, lex: Lexicon) -> MessageReading:
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
            found.append(
                _Found(group.name, group.weight, group.emergency, " ".join(text[start:end].split()))
            )
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
    harm = (
        (personal or third_party)
        and not informational
        and any(
            not _negated(lex, plain, match.start())
            for match in (lex.harm.finditer(plain) if lex.harm else ())
        )
    )
    return MessageReading(
        tuple(found),
        informational,
        personal,
        third_party,
        bool(alarms) or joking,
        risky_topic,
        question,
        harm,
    )


# ---------------------------------------------------------------- the screen's thresholds


@dataclass(frozen=True)
class Thresholds:
    """Where evidence becomes a level. Decided on data (`hotline eval --calibrate`), not by hand."""

    # P(emergency) on one message at or above which it is danger now.
    emergency: float = 0.5
    # Disclosure evidence over the conversation at or above which it is high.
    high: float = 0.5
    # Any evidence at or above this is elevated (the bot informs and keeps watching).
    elevated: float = 0.25
    # What one weight-1 lexicon indicator is worth as disclosure evidence (two groups add up).
    indicator: float = 0.35
    # How much of the model's disclosure reading counts on a message that asks rather than tells.
    question: float = 0.5
    # How much of the model's danger reading counts on a message the lexicon reads as a figure of
    # speech ("my battery is dying", "this heat is killing me", laughter).
    figure_of_speech: float = 0.3
    # How much of the model's disclosure reading counts on a message followed, later in the
    # conversation, by a question whether a job offer is safe: "they keep the passport, we pay
    # the fare from the salary ... is it legit?" describes an offer's terms, not what happened.
    # Danger now and the lexicon's phrases count in full whatever comes after.
    offer_terms: float = 1.0


def thresholds(path: Path | None = None) -> Thresholds:
    path = path or get_settings().data_dir / "risk" / "screen.yml"
    return yamlfiles.load(path, _parse_thresholds)


def _parse_thresholds(data: object) -> Thresholds:
    known = set(Thresholds.__dataclass_fields__)
    values = (data.get("thresholds") if isinstance(data, dict) else None) or {}
    return Thresholds(**{k: float(v) for k, v in values.items() if k in known})


# ---------------------------------------------------------------- one turn


@dataclass(frozen=True)
class Turn:
    """One message and the model's reading of it: every intent it considered, with its probability."""

    text: str
    intents: Mapping[str, float]

    @property
    def intent(self) -> str | None:
        return max(self.intents, key=self.intents.__getitem__) if self.intents else None

    @property
    def confidence(self) -> float:
        return max(self.intents.values()) if self.intents else 0.0

    def p(self, *names: str) -> float:
        return min(1.0, sum(self.intents.get(name, 0.0) for name in names))

    @classmethod
    def from_parse(cls, text: str, parse_data: Mapping[str, object]) -> Turn:
        """From Rasa's parse data; the fallback pseudo-intent hides the model's own readings."""
        ranking = parse_data.get("intent_ranking")
        intents = {
            str(r["name"]): float(r.get("confidence") or 0.0)
            for r in (ranking if isinstance(ranking, list) else [])
            if isinstance(r, dict) and r.get("name") and r.get("name") != "nlu_fallback"
        }
        top = parse_data.get("intent") or {}
        if not intents and isinstance(top, dict) and top.get("name") not in (None, "nlu_fallback"):
            intents = {str(top["name"]): float(top.get("confidence") or 0.0)}
        return cls(text, intents)


TurnLike = Turn | tuple[str, str | None, float]


def _as_turn(item: TurnLike) -> Turn:
    if isinstance(item, Turn):
        return item
    text, intent, confidence = item
    return Turn(text or "", {intent: confidence} if intent else {})


# An age said with its unit: "19 anos", "she is 19 years", "ans 16", "miaka 19". A child is under
# 18 (the definition the child path rests on), so a message that gives only adult ages is not
# read as a child alone however the model reads it.
_AGE = re.compile(
    r"\b(\d{1,2}) ?(?:anos?|years?|yrs?|yo|ans?)\b|\b(?:miaka|umri wa|age[ds]?|idade de) ?(\d{1,2})\b"
)


def _only_adult_ages(plain: str) -> bool:
    ages = [int(a or b) for a, b in _AGE.findall(plain)]
    return bool(ages) and min(ages) >= 18


@dataclass(frozen=True)
class _TurnEvidence:
    danger: float  # the model's reading of danger now, after the lexicon's context
    disclosure: float  # the model's reading of a disclosure (self, other, a child), same
    informational: float  # the model's reading of a question about risk
    about_other: float  # how much of the disclosure is about someone else


def _turn_evidence(turn: Turn, reading: MessageReading, limits: Thresholds) -> _TurnEvidence:
    plain = normalise(turn.text)
    child = 0.0 if _only_adult_ages(plain) else turn.p("child_alone")
    danger = turn.p("emergency")
    disclosure = min(1.0, turn.p("report_exploitation", "report_third_party") + child)
    if reading.false_alarm:
        danger *= limits.figure_of_speech
    if reading.question or reading.informational:
        disclosure *= limits.question
        if reading.informational:
            danger *= limits.question
    return _TurnEvidence(
        danger=danger,
        disclosure=disclosure,
        informational=turn.p(*INFORMATIONAL_INTENTS),
        about_other=turn.p("report_third_party"),
    )


# ---------------------------------------------------------------- the conversation


def _offer_question(turns: Sequence[Turn], lex: Lexicon | None) -> int:
    """The last message that asks about a job offer the conversation is about, or -1.

    Whatever came before it describes the offer: "a man offers farm work ... they keep the
    passport, we repay the bus later ... should I go?". The question that closes it need not read
    as ask_job_offer_safety ("is this trafficking?", "vous pensez que c'est sur?", "niende ama
    nisiende?"): once a message has asked about an offer, any later question that is not itself a
    disclosure or danger asks about the same offer.
    """
    asked = [i for i, t in enumerate(turns) if t.intent == "ask_job_offer_safety"]
    if not asked:
        return -1
    last = asked[-1]
    for index in range(asked[0] + 1, len(turns)):
        turn = turns[index]
        asks = "?" in turn.text or (lex is not None and read_message(turn.text, lex).question)
        if (
            asks
            and turn.intent not in (*DISCLOSURE_INTENTS, "emergency")
            and not asked_for(turn.text)
        ):
            last = max(last, index)
    return last


def assess(
    messages: Sequence[TurnLike],
    *,
    use_model: bool = True,
    use_lexicon: bool = True,
    limits: Thresholds | None = None,
) -> Assessment:
    """The risk of a whole conversation, oldest message first.

    Two kinds of evidence, weighed together:
    - the model's reading of each message (its probability for danger now and for each
      disclosure intent), which carries words nobody put in the lexicon;
    - the lexicon's indicator phrases, which catch what the model has not learnt and say to
      the counsellor *why* (the evidence shown in the console), and its context (negation,
      questions, figures of speech), which tempers the model's reading.
    Neither gates the other: a confident model reading counts with no phrase behind it, and a
    grave phrase counts whatever the model says. `use_model`/`use_lexicon` exist for the ablation.
    """
    limits = limits or thresholds()
    lex = lexicon()
    indicators: list[Indicator] = []
    weights: dict[str, int] = {}
    intents: list[str] = []
    emergency = elevated = False
    not_disclosed = 1.0  # the chance that no message so far is a disclosure, as the model reads it
    own = other = 0.0
    turns = [_as_turn(raw) if use_model else Turn(_as_turn(raw).text, {}) for raw in messages]
    offer_question = _offer_question(turns, lex if use_lexicon else None)

    for index, turn in enumerate(turns):
        if asked_for(turn.text):
            # "now I want to write in English please" asks for a language and nothing else:
            # its "now" is not danger, and it must never open a case.
            continue
        reading = (
            read_message(turn.text, lex) if use_lexicon else MessageReading((), *([False] * 5))
        )
        evidence = _turn_evidence(turn, reading, limits)

        for item in reading.found:
            if reading.informational and not item.emergency:
                # "Can an employer keep my passport?" asks how things work: a risk, not a disclosure.
                elevated = True
                continue
            indicators.append(Indicator(item.group, index, item.phrase))
            if item.emergency:
                emergency = True
                continue
            weights[item.group] = max(weights.get(item.group, 0), item.weight)

        if evidence.danger >= limits.emergency:
            emergency = True
            intents.append("emergency")
        # Danger the model half sees is a disclosure of something wrong all the same.
        message_disclosure = max(evidence.disclosure, evidence.danger)
        if index < offer_question and not reading.harm:
            message_disclosure = max(evidence.disclosure * limits.offer_terms, evidence.danger)
        not_disclosed *= 1.0 - message_disclosure
        if message_disclosure >= limits.high and turn.intent in DISCLOSURE_INTENTS:
            intents.append(turn.intent)
        if reading.third_party:
            other += 1.0
        other += evidence.about_other
        own += turn.p("report_exploitation") + (1.0 if reading.personal and reading.found else 0.0)
        if (
            evidence.informational >= limits.elevated
            or message_disclosure >= limits.elevated
            or reading.risky_topic
            or reading.harm
        ):
            elevated = True

    score = sum(weights.values())
    lexicon_evidence = 1.0 if score >= HIGH_SCORE else score * limits.indicator
    disclosure = 1.0 - not_disclosed * (1.0 - lexicon_evidence)
    if emergency:
        level: Level = "emergency"
    elif disclosure >= limits.high:
        level = "high"
    elif elevated or disclosure >= limits.elevated or score > 0:
        level = "elevated"
    else:
        level = "none"
    return Assessment(
        level, tuple(indicators), other > 0 and other >= own, tuple(dict.fromkeys(intents))
    )


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
