"""Counsellor accounts in Redis: argon2 password hashes, roles, disabling, login lockout.

There is no default account and no default password: accounts are created with
`hotline counsellor add NAME --role counsellor|supervisor`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Literal

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hotline import keys

Role = Literal["counsellor", "supervisor"]
ROLES: tuple[Role, ...] = ("counsellor", "supervisor")
UI_LANGUAGES = ("pt", "en")

# Five wrong passwords in fifteen minutes lock the name for fifteen minutes: slow enough
# to stop guessing, short enough that a counsellor on shift is not locked out for long.
MAX_FAILURES = 5
LOCKOUT_SECONDS = 15 * 60

_hasher = PasswordHasher()


class AccountError(Exception):
    """A request about an account that cannot be met; the message says why."""


@dataclass(frozen=True)
class Counsellor:
    name: str
    role: Role
    language: str
    active: bool

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


def _key(name: str) -> str:
    return keys.counsellor(name)


def _valid_name(name: str) -> str:
    name = name.strip().lower()
    if not (2 <= len(name) <= 40) or not all(c.isalnum() or c in "._-" for c in name):
        raise AccountError("a name is 2-40 letters, digits, dots, dashes or underscores")
    return name


def _check_password(password: str) -> None:
    if len(password) < 12:
        raise AccountError("a password needs at least 12 characters")


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def add(db: redis.Redis, name: str, role: Role, password: str, language: str = "pt") -> Counsellor:
    name = _valid_name(name)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    _check_password(password)
    created = db.hsetnx(_key(name), "hash", _hasher.hash(password))
    if not created:
        raise AccountError(f"an account named {name} exists already")
    db.hset(
        _key(name),
        mapping={
            "role": role,
            "language": language if language in UI_LANGUAGES else "pt",
            "active": "1",
            "created": f"{time.time():.0f}",
        },
    )
    db.sadd(keys.COUNSELLORS_KEY, name)
    account = get(db, name)
    assert account is not None  # just written
    return account


def get(db: redis.Redis, name: str) -> Counsellor | None:
    data = db.hgetall(_key(name))
    if not data:
        return None
    return Counsellor(
        name=name,
        role=data.get("role", "counsellor"),
        language=data.get("language", "pt"),
        active=data.get("active") == "1",
    )


def all_counsellors(db: redis.Redis) -> list[Counsellor]:
    return [c for c in (get(db, n) for n in sorted(db.smembers(keys.COUNSELLORS_KEY))) if c]


def set_active(db: redis.Redis, name: str, active: bool) -> None:
    if not db.exists(_key(name)):
        raise AccountError(f"no account named {name}")
    db.hset(_key(name), "active", "1" if active else "0")


def set_password(db: redis.Redis, name: str, password: str) -> None:
    if not db.exists(_key(name)):
        raise AccountError(f"no account named {name}")
    _check_password(password)
    db.hset(_key(name), "hash", _hasher.hash(password))
    db.delete(keys.login_failures(name))


def set_language(db: redis.Redis, name: str, language: str) -> None:
    if language in UI_LANGUAGES:
        db.hset(_key(name), "language", language)


def locked(db: redis.Redis, name: str) -> bool:
    return int(db.get(keys.login_failures(name)) or 0) >= MAX_FAILURES


def authenticate(db: redis.Redis, name: str, password: str) -> Counsellor | None:
    """The counsellor when the name and password match an active, unlocked account."""
    name = name.strip().lower()
    failures = keys.login_failures(name)
    if locked(db, name):
        return None
    stored = db.hget(_key(name), "hash")
    try:
        ok = stored is not None and _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        pipe = db.pipeline()
        pipe.incr(failures)
        pipe.expire(failures, LOCKOUT_SECONDS)
        pipe.execute()
        return None
    db.delete(failures)
    counsellor = get(db, name)
    return counsellor if counsellor and counsellor.active else None
