"""The Redis connection every component shares (the key names are in hotline.keys)."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from hotline.settings import Settings


class NotReplicated(redis.ConnectionError):
    """Fewer replicas than HOTLINE_REDIS_ACK_REPLICAS confirmed a write in time, so a failover
    now could lose it. A ConnectionError: every caller's "Redis is away" path applies (the
    webhook is refused for Twilio to retry, the sender waits and tries again)."""


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


def _confirmed(settings: Settings, results: list[Any]) -> list[Any]:
    needed = settings.redis_ack_replicas
    if not needed:
        return results
    if results[-1] < needed:
        raise NotReplicated(f"{results[-1]} of {needed} replica(s) confirmed the write in time")
    return results[:-1]


def execute_replicated(pipe: redis.client.Pipeline, settings: Settings) -> list[Any]:
    """Execute `pipe`, then, with replicas required, wait for them on the same connection:
    WAIT counts what that connection wrote, so from any other one it would prove nothing."""
    if settings.redis_ack_replicas:
        pipe.wait(settings.redis_ack_replicas, settings.redis_ack_timeout_ms)
    return _confirmed(settings, pipe.execute())


async def execute_replicated_async(
    pipe: redis.asyncio.client.Pipeline, settings: Settings
) -> list[Any]:
    """`execute_replicated` for the asyncio client."""
    if settings.redis_ack_replicas:
        pipe.wait(settings.redis_ack_replicas, settings.redis_ack_timeout_ms)
    return _confirmed(settings, await pipe.execute())
