"""Logging set-up with a last line of defence against phone numbers in log lines.

Code must never pass a number or a message text to a logger; this filter still masks
anything that looks like a phone number, in case a library does.
"""

from __future__ import annotations

import logging
import re

# Seven or more digits, optionally with +, spaces or dashes between them, standing on their
# own: digits inside an identifier (a MessageSid, a conversation id) are not a number, and
# masking them would make the logs useless for tracing one message.
_PHONE = re.compile(r"(?<![A-Za-z0-9])\+?\d[\d\s\-]{5,}\d(?![A-Za-z0-9])")


def redact(text: str) -> str:
    """Replace every phone-number-like run with a fixed marker."""
    return _PHONE.sub("[number]", text)


class RedactingFilter(logging.Filter):
    """Rewrites the formatted message so no phone number survives."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO") -> None:
    """One format for every process; the redacting filter on the root handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs full URLs, which for the Twilio API contain no numbers but for Rasa
    # contain conversation ids only; keep them quieter anyway.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("twilio.http_http_client").setLevel(logging.WARNING)
