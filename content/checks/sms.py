"""SMS length of what is sent, counted with the sender's own arithmetic (hotline.sms).

Each text alone (a bot response, a canned reply, a channel note) and each turn as it leaves
(content.sent: replies joined, the service list built, placeholders filled) must fit three
segments. A text that is UCS-2 because of one character, and pays for it in segments, is
flagged with that character.
"""

from __future__ import annotations

from content import sent
from content.model import Content, Response, keyword_texts
from hotline import sms
from hotline.text import fold

MAX_SEGMENTS = 3
# Characters three concatenated SMS can carry: 3 x 153 GSM-7 septets or 3 x 67 UCS-2 units.
MAX_GSM_UNITS = MAX_SEGMENTS * sms.GSM7_PART
MAX_UCS2_UNITS = MAX_SEGMENTS * sms.UCS2_PART
# Segments allowed per channel; WhatsApp carries a message whole, so it has no limit here.
SEGMENT_LIMITS = {"sms": MAX_SEGMENTS}

# GSM-7 characters that read the same as ones word processors and phones type by themselves.
LOOKALIKES = {
    "\u2019": "'",
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u202f": " ",
}


def units(text: str) -> int:
    """What the text costs in its encoding: GSM-7 septets, or UTF-16 units in UCS-2."""
    if sms.encoding(text) == "GSM-7":
        return len(text) + sum(1 for char in text if char in sms.GSM7_EXTENSION)
    return len(text.encode("utf-16-le")) // 2


def _shown(chars: list[str]) -> str:
    """Each character quoted, or by its code when it cannot be seen (a non-breaking space)."""
    return ", ".join(
        f"'{c}'" if c.isprintable() and not c.isspace() else f"U+{ord(c):04X}" for c in chars
    )


def _limit(text: str) -> str:
    if sms.encoding(text) == "GSM-7":
        return f"{MAX_GSM_UNITS} characters or fewer"
    return f"{MAX_UCS2_UNITS} characters or fewer"


def longest_filling(text: str, language: str) -> tuple[str, dict[str, str]]:
    """The text with the run-time values that make it cost most, and those values."""
    options = [(sent.fill(text, values), values) for values in sent.fillings([text], language)]
    return max(options, key=lambda option: (sms.segment_count(option[0]), units(option[0])))


def length_problem(label: str, text: str, language: str) -> str | None:
    """None when the text fits three SMS segments, else what is wrong and how to fix it."""
    filled, values = longest_filling(text, language)
    segments = sms.segment_count(filled)
    if segments <= MAX_SEGMENTS:
        return None
    with_values = f" with {sent.described(values)}" if values else ""
    odd = sms.non_gsm_chars(filled)
    if odd:
        return (
            f"{label} needs {segments} SMS segments (UCS-2 because of {_shown(odd[:6])}); it has "
            f"{units(filled)} characters{with_values}: shorten it to {_limit(filled)}"
        )
    return (
        f"{label} needs {segments} SMS segments (GSM-7); it has {units(filled)} "
        f"characters{with_values}, counting {{}}[]~^|\\€ as two: shorten it to {_limit(filled)}"
    )


def single_character(label: str, text: str) -> str | None:
    """When one character alone makes the text UCS-2 and that costs segments: which, and how
    many segments it costs."""
    odd = sms.non_gsm_chars(text)
    if len(odd) != 1:
        return None
    char = odd[0]
    plain = fold(char)
    lookalike = LOOKALIKES.get(char) or (plain if sms.encoding(plain) == "GSM-7" else "")
    now = sms.segment_count(text)
    then = sms.segment_count(text.replace(char, lookalike or "?"))
    if then >= now:
        return None
    if char in LOOKALIKES:
        fix = f"write {lookalike!r} instead"
    else:
        fix = "rephrase without it if you can, or keep it where the word needs it"
    count = text.count(char)
    times = "once" if count == 1 else f"{count} times"
    return (
        f"{label} is sent in UCS-2 only because of {_shown([char])} ({times}): {now} SMS "
        f"segments instead of {then}; {fix}"
    )


def _check_alone(content: Content, item: Response, label: str) -> None:
    for language, text in item.texts.items():
        if not text.text.strip():
            continue
        message = length_problem(f"{label} [{language}]", text.text, language)
        if message:
            content.error(item.path, text.line, message)
            continue
        filled, values = longest_filling(text.text, language)
        costly = single_character(f"{label} [{language}]", filled)
        if costly and values and not set(sms.non_gsm_chars(filled)) & set(text.text):
            # Only the run-time value has it: the editor cannot change that, the code can.
            costly += f" (it is in {sent.described(values)}, which the hotline fills in)"
        if costly:
            content.warn(item.path, text.line, costly)


def _turn_problem(message: sent.Message, segments: int, limit: int) -> str:
    joined = sms.MESSAGE_SEPARATOR.join(message.texts)
    odd = sms.non_gsm_chars(joined)
    encoding = f"UCS-2 because of {_shown(odd[:6])}" if odd else "GSM-7"
    bodies = message.bodies()
    how = f"one SMS of {segments}" if len(bodies) == 1 else f"{len(bodies)} SMS of {segments}"
    parts = " + ".join(f"{part.name} ({units(part.text)})" for part in message.parts)
    case = f" ({message.case})" if message.case else ""
    return (
        f"{message.turn} [{message.language}]{case} goes out as {how} segments ({encoding}): "
        f"{parts}, {units(joined)} characters with the line breaks between them; on SMS it must "
        f"fit {limit} segments ({_limit(joined)}): shorten these texts"
    )


def _check_turns(content: Content) -> None:
    """Each turn in each language, at its longest (the service list that makes it longest)."""
    worst: dict[tuple[str, str], tuple[tuple[int, int], sent.Message]] = {}
    for message in sent.messages(content):
        if len(message.parts) == 1:
            continue  # one text alone: measured with the texts
        joined = sms.MESSAGE_SEPARATOR.join(message.texts)
        score = (message.segments("sms") or 0, units(joined))
        key = (message.turn, message.language)
        if key not in worst or score > worst[key][0]:
            worst[key] = (score, message)
    for channel in sent.CHANNELS:
        limit = SEGMENT_LIMITS.get(channel)
        if limit is None:
            continue
        for _, message in worst.values():
            segments = message.segments(channel) or 0
            if segments > limit:
                # Pointed at the longest text: shortening it helps most.
                where = max(message.parts, key=lambda part: units(part.text))
                content.error(where.path, where.line, _turn_problem(message, segments, limit))
                continue
            joined = sms.MESSAGE_SEPARATOR.join(message.texts)
            case = f" ({message.case})" if message.case else ""
            costly = single_character(f"{message.turn} [{message.language}]{case}", joined)
            if costly:
                char = sms.non_gsm_chars(joined)[0]
                where = next(part for part in message.parts if char in part.text)
                content.warn(where.path, where.line, f"{costly} (it is in {where.name})")


def check(content: Content) -> None:
    for response in content.responses:
        _check_alone(content, response, response.name)
    for reply in content.canned:
        _check_alone(content, reply, f"canned reply {reply.name}")
    for note in keyword_texts(content):
        _check_alone(content, note, f"texts > {note.name}")
    _check_turns(content)
