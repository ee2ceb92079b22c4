"""Pseudonymous conversation ids, sealed phone numbers and masked display forms.

Rasa, logs and the console only ever see the keyed hash; the number itself is kept
encrypted, and only the sender unseals it to reply.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


def conversation_id(address: str, secret: str) -> str:
    """A stable id for one phone number on one channel (HMAC-SHA256, hex, 32 chars)."""
    digest = hmac.new(secret.encode(), address.strip().encode(), hashlib.sha256).hexdigest()
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
