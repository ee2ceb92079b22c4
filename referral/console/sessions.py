"""Console sign-in sessions kept in Redis, each with its own CSRF token and an idle timeout."""

from __future__ import annotations

import hmac
import json
import secrets

import redis

IDLE_TIMEOUT_SECONDS = 30 * 60
COOKIE = "hotline_session"


def _key(token: str) -> str:
    return f"hotline:session:{token}"


def start(db: redis.Redis, counsellor: str) -> str:
    """A new session for a counsellor who just signed in; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    db.hset(_key(token), mapping={"counsellor": counsellor, "csrf": secrets.token_urlsafe(24)})
    db.expire(_key(token), IDLE_TIMEOUT_SECONDS)
    return token


def load(db: redis.Redis, token: str | None) -> dict[str, str] | None:
    """The session behind a cookie, its idle clock restarted; None when unknown or expired."""
    if not token:
        return None
    data = db.hgetall(_key(token))
    if not data:
        return None
    db.expire(_key(token), IDLE_TIMEOUT_SECONDS)
    return data


def end(db: redis.Redis, token: str | None) -> None:
    if token:
        db.delete(_key(token))


def csrf_ok(session: dict[str, str], offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(session.get("csrf", ""), offered or "")


def flash(db: redis.Redis, token: str | None, key: str, level: str = "ok", **values: str) -> None:
    """A message for the next page this session shows (after a form's redirect)."""
    if token and db.exists(_key(token)):
        db.hset(_key(token), "flash", json.dumps({"key": key, "level": level, "values": values}))


def take_flash(db: redis.Redis, token: str | None) -> dict | None:
    """The waiting message, once: it is gone after this."""
    if not token:
        return None
    with db.pipeline(transaction=True) as pipe:
        pipe.hget(_key(token), "flash")
        pipe.hdel(_key(token), "flash")
        raw, _ = pipe.execute()
    return json.loads(raw) if raw else None
