"""Pseudonymous conversation ids, sealed phone numbers and masked display forms.

Rasa, logs and the console only ever see the keyed hash; the number itself is kept
encrypted, and only the sender unseals it to reply.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


def number_of(address: str) -> str:
    """The phone number an address reaches, without its channel ("whatsapp:+258…" -> "+258…")."""
    return address.strip().rpartition(":")[2].strip()


def conversation_id(address: str, secret: str) -> str:
    """A stable id for one phone number, whichever channel it writes from (HMAC-SHA256, hex).

    The channel is not part of the identity: one person texting by SMS and by WhatsApp is one
    conversation, so an erasure asked for on either reaches both. Which channel a reply takes
    is the conversation's `channel` (the one last written from), kept beside the sealed address.
    """
    digest = hmac.new(secret.encode(), number_of(address).encode(), hashlib.sha256).hexdigest()
    return "c" + digest[:31]


def seal(address: str, key: str) -> str:
    """Encrypt an address for storage."""
    return Fernet(key.encode()).encrypt(address.encode()).decode()


def unseal(token: str, key: str) -> str:
    """Decrypt an address sealed with `seal`; raises ValueError when the key is wrong."""
    try:
        return Fernet(key.encode()).decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ValueError("sealed address cannot be opened with this key") from error


def mask(address: str) -> str:
    """What a counsellor sees: channel, country code and the last two digits."""
    channel, _, number = address.rpartition(":")
    digits = number.lstrip("+")
    shown = f"+{digits[:3]} ••• ••{digits[-2:]}" if len(digits) > 5 else "•••"
    return f"{channel}:{shown}" if channel else shown
