"""Redis lets in only its users, each to what its component needs (ops/redis_users.py).

A real redis-server started as the launcher starts it, with the ACL file the launcher writes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hotline import keys
from hotline.settings import REDIS_LOGIN
from hotline.store import connect
from ops import processes, redis_users

PASSWORDS = {user: redis_users.derived_password("k" * 32, user) for user in redis_users.RULES}


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("acl-redis")
    acl = folder / "users.acl"
    acl.write_text(redis_users.acl_file(PASSWORDS))
    port = processes.free_port()
    server = subprocess.Popen(processes.redis_command(port, folder, acl), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not processes.port_answers("127.0.0.1", port):
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield port
    server.terminate()
    server.wait(10)


def as_user(port: int, user: str | None, password: str | None = None) -> redis.Redis:
    # A refused login is final: no retries (redis-py retries connection errors by default).
    once = Retry(NoBackoff(), 0)
    if user is None:
        return redis.Redis(port=port, decode_responses=True, retry=once)
    return redis.Redis(
        port=port,
        username=user,
        password=password if password is not None else PASSWORDS[user],
        decode_responses=True,
        retry=once,
    )


def test_without_a_password_nothing_is_answered(port: int) -> None:
    with pytest.raises(redis.AuthenticationError):
        as_user(port, None).get(keys.conversation("c1"))
    with pytest.raises(redis.AuthenticationError):
        as_user(port, "worker", "not-the-password").ping()
    with pytest.raises(redis.AuthenticationError):
        as_user(port, "default", "").ping()


def test_each_service_reaches_its_own_keys_and_no_dangerous_command(port: int) -> None:
    gateway = as_user(port, "gateway")
    gateway.xadd(keys.INBOUND_STREAM, {"conversation_id": "c1", "body": "ola"})
    gateway.hset(keys.conversation("c1"), "channel", "sms")
    for command in (
        ("FLUSHALL",),
        ("CONFIG", "GET", "dir"),
        ("KEYS", "*"),
        ("ACL", "LIST"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            gateway.execute_command(*command)
    # Rasa's trackers are not the gateway's; the erasing processes may delete them.
    with pytest.raises(redis.exceptions.NoPermissionError):
        gateway.get(keys.tracker("c1"))
    for user in ("worker", "console", "housekeeping"):
        eraser = as_user(port, user)
        eraser.delete(keys.tracker("c1"))
        assert "aof_enabled" in eraser.info("persistence")


def test_only_the_console_reaches_counsellors_accounts_and_sessions(port: int) -> None:
    console = as_user(port, "console")
    console.hset(keys.counsellor("ana"), "role", "counsellor")
    console.set(keys.session("hash-of-a-token"), "ana")
    for user in ("gateway", "worker", "sender", "actions", "housekeeping", "rasa"):
        service = as_user(port, user)
        with pytest.raises(redis.exceptions.NoPermissionError):
            service.hset(keys.counsellor("ana"), "role", "supervisor")
        with pytest.raises(redis.exceptions.NoPermissionError):
            service.get(keys.session("hash-of-a-token"))
    assert console.hget(keys.counsellor("ana"), "role") == "counsellor"


def test_rasa_and_the_sandbox_reach_only_their_own_keys(port: int) -> None:
    rasa = as_user(port, "rasa")
    rasa.set(keys.tracker("c1"), "{}")
    rasa.set(keys.rasa_lock("c1"), "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        rasa.hgetall(keys.conversation("c1"))
    with pytest.raises(redis.exceptions.NoPermissionError):
        rasa.xrange(keys.INBOUND_STREAM)
    sandbox = as_user(port, "sandbox")
    sandbox.lpush(keys.SANDBOX_MESSAGES_KEY, "SM1")
    sandbox.publish(keys.SANDBOX_EVENTS_CHANNEL, "{}")
    with pytest.raises(redis.exceptions.NoPermissionError):
        sandbox.hgetall(keys.conversation("c1"))


def test_the_operator_may_do_anything(port: int) -> None:
    ops = as_user(port, "ops")
    assert ops.config_get("appendonly") == {"appendonly": "yes"}
    assert ops.keys(keys.conversation("*"))


def test_the_servers_own_logins_reach_no_key(port: int) -> None:
    """Replication, Sentinel and HAProxy's check run what their job needs, and nothing reads
    or writes a key (ops/replicas.py runs them for real: tests/ops/test_replicas.py)."""
    sentinel = as_user(port, "sentinel")
    assert sentinel.execute_command("ROLE")[0] == "master"
    assert "role" in sentinel.info("replication")
    sentinel.publish("__sentinel__:hello", "x")
    check = as_user(port, "healthcheck")
    assert check.ping() and check.info("replication")["role"] == "master"
    replica = as_user(port, "replica")
    assert replica.ping()
    for user in redis_users.INFRASTRUCTURE:
        server = as_user(port, user)
        for command in (
            ("GET", keys.conversation("c1")),
            ("SET", "anything", "1"),
            ("XRANGE", keys.INBOUND_STREAM, "-", "+"),
            ("CONFIG", "GET", "dir"),
            ("FLUSHALL",),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                server.execute_command(*command)
    with pytest.raises(redis.exceptions.NoPermissionError):
        check.execute_command("CLIENT", "KILL", "ID", "1")


def test_a_replica_follows_its_primary_with_its_own_login(port: int, tmp_path: Path) -> None:
    follower_port = processes.free_port()
    conf = tmp_path / "replica.conf"
    conf.touch(mode=0o600)
    conf.write_text(f"masteruser replica\nmasterauth {PASSWORDS['replica']}\n")
    acl = tmp_path / "users.acl"
    acl.write_text(redis_users.acl_file(PASSWORDS))
    command = processes.redis_command(follower_port, tmp_path / "data", acl)
    follower = subprocess.Popen(
        [command[0], str(conf), *command[1:], "--replicaof", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        as_user(port, "ops").set("replicated:probe", "1")
        deadline = time.monotonic() + 20
        while True:
            try:
                if as_user(follower_port, "ops").get("replicated:probe") == "1":
                    break
            except redis.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the replica never caught up"
            time.sleep(0.1)
    finally:
        follower.kill()  # nothing of it is kept
        follower.wait(10)


def test_a_process_logs_in_with_its_settings(port: int, settings_factory) -> None:
    settings = settings_factory(
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        REDIS_USERNAME="console",
        REDIS_PASSWORD=PASSWORDS["console"],
    )
    assert connect(settings).hget(keys.conversation("c1"), "channel") == "sms"


def test_the_acl_file_holds_hashes_not_passwords() -> None:
    text = redis_users.acl_file(PASSWORDS)
    assert not any(password in text for password in PASSWORDS.values())
    assert text.splitlines()[0].startswith("user default off")
    # Every process that logs in has a user; the operator's tools have theirs, and so have
    # replication, Sentinel and HAProxy's health check past one machine.
    assert set(redis_users.RULES) == {*REDIS_LOGIN, "ops", *redis_users.INFRASTRUCTURE}
    assert not set(redis_users.USER_OF) & redis_users.INFRASTRUCTURE


def test_the_production_acl_comes_from_the_secrets_folder(tmp_path: Path) -> None:
    for user, password in PASSWORDS.items():
        redis_users.secret_file(tmp_path, user).write_text(f"REDIS_PASSWORD={password}\n")
    made = subprocess.run(
        [sys.executable, "-m", "ops.redis_users", "--secrets", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=processes.PROJECT_ROOT,
    )
    assert made.returncode == 0 and made.stdout == redis_users.acl_file(PASSWORDS)
    redis_users.secret_file(tmp_path, "sender").unlink()
    missing = subprocess.run(
        [sys.executable, "-m", "ops.redis_users", "--secrets", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=processes.PROJECT_ROOT,
    )
    assert missing.returncode == 1 and missing.stdout == ""
    assert "REDIS_PASSWORD_sender.env" in missing.stderr
