"""The last line of defence: numbers never reach a log line, identifiers stay readable."""

from __future__ import annotations

import logging

import pytest

from hotline.logs import RedactingFilter, redact


@pytest.mark.parametrize(
    "line",
    [
        "from +258 84 123 4567",
        "from whatsapp:+258841234567",
        "call 0027-82-555-0101 now",
        "number=258841234567.",
    ],
)
def test_a_phone_number_is_masked(line: str) -> None:
    assert not any(ch.isdigit() for ch in redact(line).replace("[number]", "")), redact(line)


@pytest.mark.parametrize(
    "line",
    [
        "sent SM0123456789abcdef0123456789abcdef",
        "conversation c3f2a1b0998877665544332211aabbcc",
        "case R1234 waited 12 s",
    ],
)
def test_identifiers_and_small_numbers_stay(line: str) -> None:
    assert redact(line) == line


def test_the_filter_rewrites_a_record_that_carries_a_number() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "reply to %s", ("+258841234567",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "reply to [number]"
