"""Logging set-up with a last line of defence against phone numbers in log lines.

Code must never pass a number or a message text to a logger; this filter still masks
anything that looks like a phone number, in case a library does.
"""

from __future__ import annotations

import logging
import re

# Seven or more digits, optionally with +, spaces or dashes between them, or three or more
# groups of 2-4 digits split by dots, slashes or brackets ("+258.84.123.4567", "(84) 123/4567"),
# standing on their own: digits inside an identifier (a MessageSid, a conversation id) are
# not a number, and masking them would make the logs useless for tracing one message. A
# figure such as "12.345678 s" is one group and stays.
_PHONE = re.compile(
    r"(?<![A-Za-z0-9])"
    r"(?:\+?\d[\d\s\-]{5,}\d|\+?\d{2,4}(?:[\s.\-/()]{1,2}\d{2,4}){2,})"
    r"(?![A-Za-z0-9])"
)


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


class RedactingFormatter(logging.Formatter):
    """Masks numbers in all a line says: the message, a traceback's text, a stack.

    A filter sees only the message; a traceback (an exception's repr can quote a request
    body) is added by the formatter, so the formatter is where the last mask goes."""

    def format(self, record: logging.LogRecord) -> str:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return super().format(record)


# Servers that install handlers of their own (uvicorn's dictConfig runs before our app is
# loaded): theirs are removed so their lines pass through the root's masking formatter.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "sanic.root", "sanic.error")


def setup_logging(level: str = "INFO") -> None:
    """One format for every process, every line through the masking formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _OWN_HANDLERS:
        logger = logging.getLogger(name)
        # A logger the server silenced (`--no-access-log`: no handler, no propagation) stays so.
        if logger.handlers:
            logger.handlers[:] = []
            logger.propagate = True
    # httpx logs full URLs, which for the Twilio API contain no numbers but for Rasa
    # contain conversation ids only; keep them quieter anyway.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("twilio.http_http_client").setLevel(logging.WARNING)
