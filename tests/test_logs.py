"""The last line of defence: numbers never reach a log line, identifiers stay readable."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from hotline.logs import RedactingFilter, RedactingFormatter, redact, setup_logging


@pytest.mark.parametrize(
    "line",
    [
        "from +258 84 123 4567",
        "from whatsapp:+258841234567",
        "call 0027-82-555-0101 now",
        "number=258841234567.",
        "from +258.84.123.4567",
        "ligue (84) 123/4567",
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
        "Rasa answered in 12.345678 s",
        "listening on 127.0.0.1:5005",
        "rasa 3.6.21 loaded",
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


def test_a_traceback_that_quotes_a_number_is_masked_too() -> None:
    """A library's exception can carry the request it failed on; the formatter masks it."""
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("could not send to +258841234567")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed for %s", ("+258 84 123 4567",), sys.exc_info()
        )
    line = formatter.format(record)
    assert "Traceback" in line and "ValueError" in line
    assert "1234567" not in line and "841234567" not in line


def test_servers_own_loggers_go_through_the_masking_handler(monkeypatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    uvicorn = logging.getLogger("uvicorn.error")
    monkeypatch.setattr(uvicorn, "handlers", [logging.StreamHandler()])
    monkeypatch.setattr(uvicorn, "propagate", False)
    setup_logging("INFO")
    assert uvicorn.handlers == [] and uvicorn.propagate
    stream = io.StringIO()
    root.handlers[0].setStream(stream)
    uvicorn.warning("Invalid HTTP request from %s", "+258.84.123.4567")
    assert "[number]" in stream.getvalue() and "4567" not in stream.getvalue()
    # `--no-access-log` leaves uvicorn.access without handler or propagation: it stays silent.
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "handlers", [])
    monkeypatch.setattr(access, "propagate", False)
    setup_logging("INFO")
    assert not access.propagate
