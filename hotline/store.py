"""The Redis connection every component shares (the key names are in hotline.keys)."""

from __future__ import annotations

import redis

from hotline.settings import Settings


def login(settings: Settings) -> dict[str, str]:
    """The process's own Redis user (ops/redis_users.py), when it has one."""
    password = settings.redis_password.get_secret_value()
    if not (settings.redis_username or password):
        return {}
    return {"username": settings.redis_username or "default", "password": password}


def connect(settings: Settings) -> redis.Redis:
    """A client that retries briefly, so a Redis restart is a pause, not a crash."""
    return redis.Redis.from_url(
        settings.redis_url,
        **login(settings),
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry_on_timeout=True,
    )


def connect_async(settings: Settings) -> redis.asyncio.Redis:
    """The asyncio flavour, for the FastAPI apps."""
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(
        settings.redis_url,
        **login(settings),
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry_on_timeout=True,
    )
