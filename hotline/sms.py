"""SMS segment arithmetic, shared by the sender and the content check.

A text in the GSM-7 alphabet fits 160 characters in one SMS and 153 per part once split
(the rest of each part carries the header that glues the parts together). A single
character outside GSM-7 (an 'ã', a 'ç', a curly quote, an emoji) turns the whole text into
UCS-2: 70 UTF-16 units in one SMS, 67 per part. The hotline pays per segment, and people
read long texts better in one body than in pieces that may arrive out of order.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

# The GSM 03.38 default alphabet. Note the capital 'Ç' only: a lower-case 'ç' is UCS-2.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these is sent as an escape plus the character, two septets.
GSM7_EXTENSION: frozenset[str] = frozenset("^{}\\[~]|€\f")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# Carriers and Twilio reassemble up to ten parts reliably; longer bodies may arrive broken.
MAX_SEGMENTS_PER_BODY = 10
# Between the bot's messages when they share one body.
MESSAGE_SEPARATOR = "\n\n"

Encoding = Literal["GSM-7", "UCS-2"]

# Where a sentence ends: after . ! ? or … (and any closing quote or bracket) before a space,
# or at a line break. The whitespace stays with the sentence it follows.
_SENTENCE_END = re.compile(r"[.!?…]+[)\]\"'»”’]*\s+|\n\s*")
_WORD = re.compile(r"\S+\s*")


def encoding(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM alphabet, else UCS-2."""
    return "GSM-7" if set(text) <= _GSM7 else "UCS-2"


def non_gsm_chars(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in order of first appearance."""
    return list(dict.fromkeys(char for char in text if char not in _GSM7))


def to_gsm7(text: str) -> str:
    """The text with every character outside GSM-7 that has a plain letter under its accent
    replaced by that letter ("Beirão" -> "Beirao"), so a name from the directory does not turn
    a whole SMS into UCS-2 (a third of the room). Other characters are kept."""
    out = []
    for char in text:
        if char in _GSM7:
            out.append(char)
            continue
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(plain if plain and all(c in _GSM7 for c in plain) else char)
    return "".join(out)


def _sizes(text: str, gsm: bool) -> list[int]:
    """Each character's size: septets in GSM-7, UTF-16 units in UCS-2."""
    if gsm:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def segment_count(text: str) -> int:
    """How many SMS segments the text takes; an empty message (media only) still takes one."""
    if not text:
        return 1
    gsm = encoding(text) == "GSM-7"
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    if gsm:
        doubles = sum(text.count(char) for char in GSM7_EXTENSION)
    else:
        doubles = len(text.encode("utf-16-le")) // 2 - len(text)
    units = len(text) + doubles
    if units <= single:
        return 1
    if not doubles:
        return -(-units // part)
    # An escaped character or a surrogate pair is never split across two parts, so a part
    # sometimes ends one unit short: fill the parts in order to count them exactly.
    segments, used = 1, 0
    for size in _sizes(text, gsm):
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return segments


def _fits(text: str, max_segments: int) -> bool:
    return segment_count(text.strip()) <= max_segments


def _sentences(text: str) -> list[str]:
    """The text cut after each sentence end, keeping every character."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _cut_word(word: str, max_segments: int) -> list[str]:
    """A word too long for one body (a pasted link, a 70 KB line) cut into bodies that fit."""
    pieces = []
    while word:
        # The longest prefix that fits; segment_count only grows with the prefix.
        low, high = 1, len(word)
        while low < high:
            middle = (low + high + 1) // 2
            if segment_count(word[:middle]) <= max_segments:
                low = middle
            else:
                high = middle - 1
        # Keep an accent with its letter.
        while 1 < low < len(word) and unicodedata.combining(word[low]):
            low -= 1
        pieces.append(word[:low])
        word = word[low:]
    return pieces


def split_text(text: str, max_segments: int = MAX_SEGMENTS_PER_BODY) -> list[str]:
    """Bodies of at most `max_segments` each, cut at sentence ends, else between words.

    Only a single word longer than a whole body is cut inside, as it could not be sent at all
    otherwise. The bodies, read in order, hold every word of the text in order.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    text = text.strip()
    if not text:
        return []
    if _fits(text, max_segments):
        return [text]
    bodies: list[str] = []
    current = ""

    def add(piece: str) -> None:
        nonlocal current
        if _fits(current + piece, max_segments):
            current += piece
            return
        if current.strip():
            bodies.append(current.strip())
        current = piece

    for sentence in _sentences(text):
        if _fits(sentence, max_segments):
            add(sentence)
            continue
        for word in _WORD.findall(sentence):
            if _fits(word, max_segments):
                add(word)
                continue
            *whole, rest = _cut_word(word.strip(), max_segments)
            for piece in whole:
                add(piece)
            add(rest + word[len(word.rstrip()) :])
    if current.strip():
        bodies.append(current.strip())
    return bodies


def join_messages(texts: list[str], max_segments: int = MAX_SEGMENTS_PER_BODY) -> list[str]:
    """The bot's consecutive messages, a blank line apart, in as few SMS bodies as possible.

    A message that fits in one body is never cut: a body that arrives before the previous
    one then still reads as whole messages. A message too long for any body first fills up
    the body before it, then continues in bodies of its own.
    """
    bodies: list[str] = []
    for text in texts:
        text = text.strip()
        if not text:
            continue
        if not bodies:
            bodies.extend(split_text(text, max_segments))
            continue
        joined = bodies[-1] + MESSAGE_SEPARATOR + text
        if segment_count(joined) <= max_segments:
            bodies[-1] = joined
        elif segment_count(text) <= max_segments:
            bodies.append(text)
        else:
            bodies[-1:] = split_text(joined, max_segments)
    return bodies
