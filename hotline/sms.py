"""SMS segment arithmetic, shared by the sender and the content check.

A GSM-7 text fits 160 characters in one SMS, 153 per part when split; a single character
outside GSM-7 (an 'ã', a curly quote, an emoji) turns the whole text into UCS-2: 70, then
67 per part, counted in UTF-16 units.
"""

from __future__ import annotations

import re
from typing import Literal

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")
MAX_SEGMENTS_PER_BODY = 10  # carriers reassemble up to ten parts reliably

Encoding = Literal["GSM-7", "UCS-2"]


def non_gsm_chars(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in order of first appearance."""
    seen: list[str] = []
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION and char not in seen:
            seen.append(char)
    return seen


def encoding(text: str) -> Encoding:
    return "UCS-2" if non_gsm_chars(text) else "GSM-7"


def _units(text: str) -> list[int]:
    """The size of each character in its encoding's units (septets or UTF-16 units)."""
    if encoding(text) == "GSM-7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def segment_count(text: str) -> int:
    if not text:
        return 1
    units = _units(text)
    single, part = (160, 153) if encoding(text) == "GSM-7" else (70, 67)
    if sum(units) <= single:
        return 1
    # Fill parts greedily; a character is never split across two parts.
    segments, used = 1, 0
    for size in units:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return segments


def split_text(text: str, max_segments: int = MAX_SEGMENTS_PER_BODY) -> list[str]:
    """Bodies of at most `max_segments` each, cut at sentence ends, else at spaces, never mid-word."""
    if segment_count(text) <= max_segments:
        return [text]
    pieces = re.split(r"(?<=[.!?\n])\s+", text)
    bodies: list[str] = []
    current = ""
    for piece in pieces:
        if segment_count(piece) > max_segments:
            words = piece.split(" ")
            for word in words:
                candidate = f"{current} {word}".strip()
                if current and segment_count(candidate) > max_segments:
                    bodies.append(current)
                    current = word
                else:
                    current = candidate
            continue
        candidate = f"{current} {piece}".strip()
        if current and segment_count(candidate) > max_segments:
            bodies.append(current)
            current = piece
        else:
            current = candidate
    if current:
        bodies.append(current)
    return bodies


def join_messages(texts: list[str], max_segments: int = MAX_SEGMENTS_PER_BODY) -> list[str]:
    """The bot's consecutive messages packed into as few SMS bodies as possible."""
    bodies: list[str] = []
    for text in texts:
        for piece in split_text(text.strip(), max_segments):
            if bodies and segment_count(f"{bodies[-1]}\n\n{piece}") <= max_segments:
                bodies[-1] = f"{bodies[-1]}\n\n{piece}"
            else:
                bodies.append(piece)
    return [b for b in bodies if b]
