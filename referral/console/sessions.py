"""Console sign-in sessions in Redis: a CSRF token each, an idle timer and an absolute lifetime.

Only the counsellor's own requests restart the idle timer (deps.py decides which those are),
so a console left open with its heartbeat and event stream still signs out. No session
outlives LIFETIME_SECONDS, however busy. Redis holds a session under a hash of its cookie:
reading Redis gives no session to use. Each account's sessions are indexed, so a password
reset or a disable ends all of them at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets

import redis

from hotline import keys

IDLE_TIMEOUT_SECONDS = 30 * 60
LIFETIME_SECONDS = 12 * 60 * 60
COOKIE = "hotline_session"

# Both write only to a session that still exists: a request that raced a sign-out must not
# bring back a husk of it.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'active', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_FLASH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSET', KEYS[1], 'flash', ARGV[1])
"""


def _digest(token: str) -> str:
    # The token is 256 random bits: a plain hash is enough, no salt or stretching needed.
    return hashlib.sha256(token.encode()).hexdigest()


def _key(digest: str) -> str:
    return keys.session(digest)


def _index(counsellor: str) -> str:
    return keys.sessions_of(counsellor)


def start(db: redis.Redis, counsellor: str, now: float) -> str:
    """A new session for a counsellor who just signed in; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    digest = _digest(token)
    with db.pipeline(transaction=True) as pipe:
        pipe.hset(
            _key(digest),
            mapping={
                "counsellor": counsellor,
                "csrf": secrets.token_urlsafe(24),
                "started": f"{now:.6f}",
                "active": f"{now:.6f}",
            },
        )
        pipe.expire(_key(digest), IDLE_TIMEOUT_SECONDS)
        pipe.sadd(_index(counsellor), digest)
        pipe.expire(_index(counsellor), LIFETIME_SECONDS)
        pipe.execute()
    return token


def load(db: redis.Redis, token: str | None, now: float) -> dict[str, str] | None:
    """The live session behind a cookie, or None when unknown, idle too long or too old.

    Reading a session does not restart its idle timer; `touch` does.
    """
    if not token:
        return None
    data = db.hgetall(_key(_digest(token)))
    if not data.get("counsellor") or not data.get("csrf"):
        return None
    started, active = float(data.get("started") or 0), float(data.get("active") or 0)
    if now - active >= IDLE_TIMEOUT_SECONDS or now - started >= LIFETIME_SECONDS:
        end(db, token)
        return None
    return data


def touch(db: redis.Redis, token: str | None, now: float) -> None:
    """The counsellor did something: the idle timer starts again, never past the lifetime."""
    if not token:
        return
    key = _key(_digest(token))
    started = db.hget(key, "started")
    if started is None:
        return
    remaining = LIFETIME_SECONDS - (now - float(started))
    ttl = max(1, math.ceil(min(IDLE_TIMEOUT_SECONDS, remaining)))
    db.eval(_TOUCH, 1, key, f"{now:.6f}", ttl)


def end(db: redis.Redis, token: str | None) -> None:
    if not token:
        return
    digest = _digest(token)
    counsellor = db.hget(_key(digest), "counsellor")
    with db.pipeline(transaction=True) as pipe:
        pipe.delete(_key(digest))
        if counsellor:
            pipe.srem(_index(counsellor), digest)
        pipe.execute()


def end_all(db: redis.Redis, counsellor: str) -> int:
    """End every session of one account (its password was reset, or it was disabled)."""
    digests = db.smembers(_index(counsellor))
    with db.pipeline(transaction=True) as pipe:
        for digest in digests:
            pipe.delete(_key(digest))
        pipe.delete(_index(counsellor))
        results = pipe.execute()
    return sum(results[:-1])


def csrf_ok(session: dict[str, str], offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(session.get("csrf", ""), offered or "")


def flash(db: redis.Redis, token: str | None, key: str, level: str = "ok", **values: str) -> None:
    """A message for the next page this session shows (after a form's redirect)."""
    if token:
        db.eval(
            _FLASH,
            1,
            _key(_digest(token)),
            json.dumps({"key": key, "level": level, "values": values}),
        )


def take_flash(db: redis.Redis, token: str | None) -> dict | None:
    """The waiting message, once: it is gone after this."""
    if not token:
        return None
    session = _key(_digest(token))
    with db.pipeline(transaction=True) as pipe:
        pipe.hget(session, "flash")
        pipe.hdel(session, "flash")
        raw, _ = pipe.execute()
    return json.loads(raw) if raw else None
