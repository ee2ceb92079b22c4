"""Twilio's webhook forms for SMS and WhatsApp: one adapter, two address forms.

Everything Twilio-specific about receiving lives here: reading the form fields, checking
`X-Twilio-Signature`, the empty TwiML answer, and which values must never reach a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from hotline.conversations import Channel

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
TWIML_TYPE = "application/xml"
MAX_BODY_CHARS = 1600  # Twilio's own limit for an outgoing body; longer input is cut here
WHATSAPP_PREFIX = "whatsapp:"
# Form fields that carry who the person is or what they wrote; never logged.
PERSONAL_FIELDS = ("From", "To", "Body", "ProfileName", "WaId", "FromCity", "FromZip")


def channel_of(address: str) -> Channel:
    return "whatsapp" if address.startswith(WHATSAPP_PREFIX) else "sms"


def parse_form(raw: bytes) -> dict[str, str]:
    """A urlencoded body as Twilio sends it: one value per field, empty values kept
    (they are part of what Twilio signs)."""
    return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))


def signature_valid(
    auth_token: str, url: str, form: Mapping[str, str], signature: str | None
) -> bool:
    """Twilio's HMAC-SHA1 over the public URL and the sorted form fields."""
    if not signature or not auth_token:
        return False
    return RequestValidator(auth_token).validate(url, dict(form), signature)


def sign(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    """What Twilio would put in X-Twilio-Signature (for the sandbox and the tests)."""
    return RequestValidator(auth_token).compute_signature(url, dict(form))


@dataclass(frozen=True)
class InboundMessage:
    """One message a person sent, as Twilio describes it."""

    message_sid: str
    address: str  # "+258…" for SMS, "whatsapp:+258…" for WhatsApp: who to answer
    channel: Channel
    body: str
    media_count: int
    truncated: bool

    @property
    def media_only(self) -> bool:
        """Nothing to read: a photo, voice note, sticker or location without words."""
        return not self.body.strip()


def cut(text: str, limit: int = MAX_BODY_CHARS) -> str:
    """The first `limit` characters, ending at a space when one is near, never mid-word."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return head[:space].rstrip() if space > limit * 0.8 else head


def inbound_message(form: Mapping[str, str]) -> InboundMessage | None:
    """The message in a webhook form, or None when the form is not an incoming message."""
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
    address = form.get("From", "").strip()
    if not sid or not address:
        return None
    try:
        media = int(form.get("NumMedia") or 0)
    except ValueError:
        media = 0
    body = form.get("Body", "")
    short = cut(body)
    return InboundMessage(
        message_sid=sid,
        address=address,
        channel=channel_of(address),
        body=short,
        media_count=media,
        truncated=short != body,
    )


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery callback: how far one outgoing message got."""

    message_sid: str
    status: str
    error_code: str

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "undelivered")


def status_update(form: Mapping[str, str]) -> StatusUpdate | None:
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not sid or not status:
        return None
    return StatusUpdate(sid, status, form.get("ErrorCode") or "")
