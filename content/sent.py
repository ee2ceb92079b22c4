"""What a person receives: the texts that leave together in one turn, per language and channel.

On the safety paths the action server says several texts in one turn (actions/handoff.py), and
the sender joins a conversation's consecutive replies into one SMS (channels/sender.py through
hotline.sms.join_messages), so the acknowledgement, the safety tip and the consent question
arrive as one message and cost its segments together. The service list is built at run time
from data/services.yml (protection/directory.py). This module rebuilds those messages from the
content files so the check measures what is sent, not each text on its own.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ruamel.yaml.error import YAMLError

from content import LANGUAGES
from content.model import PLACEHOLDER, SERVICES, Content, Response, service_texts
from hotline import sms
from protection import directory
from referral import queue, rota
from referral.queue import Priority

# Stands for the reply that lists services: utter_services_intro, a line break, then one line
# per service, as action_list_services and action_decline_counsellor build it.
SERVICE_LIST = "(service list)"
SERVICE_INTRO = "utter_services_intro"

# A slot's value is only known at run time; slots the hotline does not fill itself are
# measured with a long made-up value.
DEFAULT_PLACEHOLDER_SAMPLE = "x" * 20
# A Monday, to ask the rota what it says on each day of a week.
_MONDAY = datetime(2024, 1, 1, 6, 0)


@dataclass(frozen=True)
class Turn:
    """One way a turn can end: the action, and the texts it says in order."""

    name: str
    action: str
    replies: tuple[str, ...]


# What each action of actions/handoff.py and actions/services.py (and the router and the
# hand-back) can say in one turn, read
# from their branches: whether the person spoke of someone else, whether the model read
# danger now, whether anyone is on duty, whether a case could be opened at all.
OFFER, OPEN, DECLINE, SERVICES_ACTION = (
    "action_offer_counsellor",
    "action_open_case",
    "action_decline_counsellor",
    "action_list_services",
)
_ACK, _THIRD, _TIP, _DANGER, _CONSENT = (
    "utter_acknowledge_disclosure",
    "utter_acknowledge_third_party",
    "utter_safety_tip",
    "utter_danger_numbers",
    "utter_ask_consent",
)
_NOBODY, _NOBODY_URGENT = "utter_nobody_on_duty", "utter_nobody_on_duty_urgent"
# Not actions, but they say data/handoff.yml texts at run time like the actions do.
HANDBACK, ROUTER = "referral/handback.py", "channels/router.py"


def open_case_replies(priority: Priority, intent: str, staffed: bool) -> tuple[str, ...]:
    """What action_open_case says, branch for branch as ActionOpenCase (actions/handoff.py)
    runs: the screen's priority, the model's reading of the latest message, and whether
    anyone is on duty.

    The child wording and the danger numbers both follow the latest intent (child_alone,
    emergency), so one turn never says both.
    """
    if priority == "emergency":
        # The emergency reply carries the numbers; off duty it says when someone answers
        # instead of "we are alerting".
        return ("utter_emergency", "utter_emergency_alerting" if staffed else _NOBODY)
    replies = ["utter_child_protection" if intent == "child_alone" else "utter_case_opened"]
    if intent == "emergency":
        replies.append(_DANGER)
    if not staffed:
        replies.append(_NOBODY_URGENT if priority == "high" else _NOBODY)
    return tuple(replies)


# The readings of the latest message that change what action_open_case says; any other
# intent (request_human, affirm, report_exploitation ...) says what "other" says.
OPEN_CASE_INTENTS = ("child_alone", "emergency", "other")


def _open_case_name(replies: tuple[str, ...]) -> str:
    """An editor's name for one way action_open_case ends, from what it says."""
    if replies[0] == "utter_emergency":
        name = "the emergency reply"
    elif replies[0] == "utter_child_protection":
        # A child alone is high risk unless the screen found nothing (a plain request).
        name = "the child path" if _NOBODY not in replies else "the child path on a plain request"
    else:
        name = "the high-risk case opened" if _NOBODY_URGENT in replies else "the case opened"
    if _DANGER in replies:
        name += " read as danger now"
    if _NOBODY in replies or _NOBODY_URGENT in replies:
        name += " with nobody on duty"
    return name


def _open_case_turns() -> Iterator[Turn]:
    """Every combination ActionOpenCase can say, once each, then what it says when Redis
    refuses the case (an emergency keeps its own reply; the others get the numbers and when
    someone will answer)."""
    seen: set[tuple[str, ...]] = set()
    combinations = itertools.product(queue.PRIORITIES, OPEN_CASE_INTENTS, (True, False))
    for priority, intent, staffed in combinations:
        replies = open_case_replies(priority, intent, staffed)
        if replies not in seen:
            seen.add(replies)
            yield Turn(_open_case_name(replies), OPEN, replies)
    yield Turn("no case could be opened in an emergency", OPEN, ("utter_emergency",))
    yield Turn("no case could be opened", OPEN, (_NOBODY_URGENT,))


TURNS: tuple[Turn, ...] = (
    Turn("the high-risk offer", OFFER, (_ACK, _TIP, _CONSENT)),
    Turn("the high-risk offer about someone else", OFFER, (_THIRD, _TIP, _CONSENT)),
    Turn("the high-risk offer read as danger now", OFFER, (_ACK, _TIP, _DANGER, _CONSENT)),
    Turn(
        "the high-risk offer about someone else read as danger now",
        OFFER,
        (_THIRD, _TIP, _DANGER, _CONSENT),
    ),
    *_open_case_turns(),
    Turn("the counsellor declined", DECLINE, ("utter_consent_declined", SERVICE_LIST)),
    Turn("the counsellor declined with no service to list", DECLINE, ("utter_consent_declined",)),
    Turn("the service list", SERVICES_ACTION, (SERVICE_LIST,)),
    Turn("no service to list", SERVICES_ACTION, ("utter_no_services",)),
    Turn("the case handed back", HANDBACK, ("utter_case_closed",)),
    # A person writing into their open case (channels/router.py).
    Turn("the waiting note", ROUTER, ("utter_waiting_ack",)),
    Turn("the waiting note with nobody on duty", ROUTER, ("utter_waiting_ack_off_duty",)),
    Turn(
        "the waiting note at risk with nobody on duty",
        ROUTER,
        ("utter_waiting_ack_off_duty", _DANGER),
    ),
    Turn("danger now while waiting", ROUTER, ("utter_emergency", "utter_emergency_alerting")),
    Turn("danger now while waiting with nobody on duty", ROUTER, ("utter_emergency", _NOBODY)),
    Turn("a request withdrawn with the back word", ROUTER, ("utter_back_to_bot_cancelled",)),
    Turn("back to the bot while the case stays open", ROUTER, ("utter_back_to_bot_kept",)),
)

# How each channel carries a message: SMS in segments, WhatsApp as one message whatever its
# length (the sender still cuts it into the same bodies, of at most ten segments' worth).
CHANNELS = ("sms", "whatsapp")


def runtime_texts() -> dict[str, list[str]]:
    """Every data/handoff.yml text an action says, with the actions that say it."""
    said: dict[str, list[str]] = {}
    for turn in TURNS:
        for name in turn.replies:
            text = SERVICE_INTRO if name == SERVICE_LIST else name
            actions = said.setdefault(text, [])
            if turn.action not in actions:
                actions.append(turn.action)
    return said


@functools.cache
def shift_values(language: str) -> tuple[str, ...]:
    """Everything referral/rota.py can put in {next_shift}, whatever the rota says: today,
    tomorrow or a weekday at a time, or "the next shift" when the rota is empty."""
    empty = rota.parse_rota({})
    values = {rota.next_shift(0, language, empty)}
    for index, day in enumerate(rota.DAYS):
        one_day = rota.parse_rota({"shifts": {day: ["06:00-21:00"]}})
        start = (_MONDAY + timedelta(days=index)).replace(tzinfo=one_day.timezone)
        for before in (timedelta(hours=1), timedelta(hours=8), timedelta(days=3)):
            values.add(rota.next_shift(start - before, language, one_day))
    return tuple(sorted(values))


def placeholder_values(name: str, language: str) -> tuple[str, ...]:
    """The values a {slot} can take when the text is sent."""
    if name == "next_shift":
        return shift_values(language)
    return (DEFAULT_PLACEHOLDER_SAMPLE,)


def fillings(texts: list[str], language: str) -> list[dict[str, str]]:
    """Every way the placeholders in these texts can be filled at once (one value per slot in
    a turn): [{}] when there are none."""
    names = sorted({name for text in texts for name in PLACEHOLDER.findall(text)})
    choices = [placeholder_values(name, language) for name in names]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*choices)]


def fill(text: str, values: dict[str, str]) -> str:
    """The text with its {slots} replaced, as Rasa and the action server fill them."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def described(values: dict[str, str]) -> str:
    """How a filling is named in a message: {next_shift} = 'amanhã às 06:00'."""
    return ", ".join(f"{{{name}}} = '{value}'" for name, value in values.items())


@dataclass(frozen=True)
class Part:
    """One text inside a message, with where an editor changes it."""

    name: str
    path: str
    line: int
    text: str


@dataclass(frozen=True)
class Message:
    """One turn's replies in one language, as the sender receives them.

    Each reply is one or more parts on separate lines (the service list is the intro and one
    line per service); the sender puts a blank line between replies.
    """

    turn: str  # which way through the conversation, for the editor
    language: str
    replies: tuple[tuple[Part, ...], ...]
    case: str = ""  # which variant, when a path has many (the services a question lists)

    @property
    def texts(self) -> list[str]:
        return ["\n".join(part.text for part in reply) for reply in self.replies]

    @property
    def parts(self) -> list[Part]:
        return [part for reply in self.replies for part in reply]

    def bodies(self) -> list[str]:
        """The bodies the sender hands to Twilio, on either channel."""
        return sms.join_messages(self.texts)

    def segments(self, channel: str) -> int | None:
        """SMS segments paid for this message; None on WhatsApp, which has none."""
        if channel != "sms":
            return None
        return sum(sms.segment_count(body) for body in self.bodies())


def _part(response: Response, language: str) -> Part:
    """The text referral/texts.py would pick (the language's, else the Portuguese), unfilled."""
    chosen = response.texts.get(language) or response.texts.get("pt")
    if chosen is None:
        return Part(response.name, response.path, response.line, "")
    return Part(response.name, response.path, chosen.line, chosen.text)


def _filled(message: Message, values: dict[str, str]) -> Message:
    replies = tuple(
        tuple(Part(p.name, p.path, p.line, fill(p.text, values)) for p in reply)
        for reply in message.replies
    )
    filled = f"with {described(values)}" if values else ""
    case = ", ".join(part for part in (message.case, filled) if part)
    return Message(message.turn, message.language, replies, case)


def _directory(root: Path) -> list[directory.Service]:
    """The directory as the action server loads it, or [] when it cannot be read (the services
    check reports why)."""
    path = root / SERVICES
    if not path.exists():
        return []
    try:
        return directory.load(path)
    except (KeyError, TypeError, AttributeError, ValueError, YAMLError):
        return []


def _service_lists(
    content: Content, with_provinces: bool
) -> Iterator[tuple[str, list[directory.Service]]]:
    """(what was asked, services listed) for every list the directory can give.

    Every combination of kinds of service and, for a question, every province, deduplicated:
    a few hundred lists at most, each a handful of lines.
    """
    services = _directory(content.root)
    kinds = [kind for kind in directory.SERVICE_TYPES if any(s.type == kind for s in services)]
    kinds += sorted({s.type for s in services} - set(kinds))
    provinces = (None, *directory.PROVINCES) if with_provinces else (None,)
    seen: set[tuple[str, ...]] = set()
    for size in range(len(kinds) + 1):
        for chosen in itertools.combinations(kinds, size):
            for province in provinces:
                found = directory.match(services, province or "", chosen)[:4]
                key = tuple(s.id for s in found)
                if not found or key in seen:
                    continue
                seen.add(key)
                asked = ", ".join(chosen) or "any kind"
                yield f"asking for {asked}" + (f" in {province}" if province else ""), found


def _service_reply(
    language: str, found: list[directory.Service], intro: Response, names: dict[str, Response]
) -> tuple[Part, ...]:
    parts = [_part(intro, language)]
    for service in found:
        named = names.get(service.id)
        text = named.texts.get(language) if named else None
        line = text.line if text else (named.line if named else 0)
        listed = directory.format_services([service], language)
        parts.append(Part(f"service {service.id}", SERVICES, line, listed))
    return tuple(parts)


def messages(content: Content) -> Iterator[Message]:
    """Every message of TURNS in every language, once per way its placeholders can be filled;
    turns whose texts are missing are skipped (the responses check reports them)."""
    for message in _unfilled(content):
        for values in fillings(message.texts, message.language):
            yield _filled(message, values)


def _unfilled(content: Content) -> Iterator[Message]:
    by_name = {response.name: response for response in content.runtime_responses}
    names = {item.name: item for item in service_texts(content) if item.part == "name"}
    for turn in TURNS:
        needed = [SERVICE_INTRO if name == SERVICE_LIST else name for name in turn.replies]
        if any(name not in by_name for name in needed):
            continue
        for language in LANGUAGES:
            fixed: list[tuple[Part, ...]] = [
                () if name == SERVICE_LIST else (_part(by_name[name], language),)
                for name in turn.replies
            ]
            if SERVICE_LIST not in turn.replies:
                yield Message(turn.name, language, tuple(fixed))
                continue
            at = turn.replies.index(SERVICE_LIST)
            lists = _service_lists(content, with_provinces=turn.action == SERVICES_ACTION)
            for case, found in lists:
                replies = list(fixed)
                replies[at] = _service_reply(language, found, by_name[SERVICE_INTRO], names)
                yield Message(turn.name, language, tuple(replies), case)
