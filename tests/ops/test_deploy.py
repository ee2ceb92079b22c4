"""The production deployment in deploy/: systemd units, HAProxy, Redis backups and secrets.

The units are checked by `systemd-analyze verify` and the proxy by `haproxy -c`; without the
tool the test is skipped on a developer's machine and fails in CI (`make test` installs both).
The backup is restored into a fresh Redis and read back: a backup nobody restored is a hope.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hotline.settings import REDIS_LOGIN
from ops import processes, redis_users

DEPLOY = processes.PROJECT_ROOT / "deploy"
UNITS = DEPLOY / "systemd"
PROCESS_UNITS = sorted(UNITS.glob("hotline-*.service"))
SUPERVISED = {"actions", "nlg", "rasa", "gateway", "worker", "sender", "console", "housekeeping"}
HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None
    )
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed: `make test` installs it before the tests")
    pytest.skip(f"{name} is not installed (make test installs it)")


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Each key of a unit file with every value it was given, in order."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_one_unit_per_supervised_process() -> None:
    names = {p.stem.removeprefix("hotline-") for p in PROCESS_UNITS} - {"backup"}
    assert names == SUPERVISED
    target = unit_settings(UNITS / "hotline.target")["Wants"][0].split()
    assert {f"hotline-{n}.service" for n in SUPERVISED} <= set(target)


@pytest.mark.parametrize("unit", PROCESS_UNITS, ids=lambda p: p.stem)
def test_each_unit_is_hardened_and_restarts_on_failure(unit: Path) -> None:
    settings = unit_settings(unit)
    for key, value in HARDENING.items():
        assert settings.get(key) == [value], f"{unit.name}: {key}"
    if unit.stem != "hotline-backup":
        assert settings["Restart"] == ["on-failure"]
        assert settings["WantedBy"] == ["hotline.target"]


@pytest.mark.parametrize("name", sorted(SUPERVISED))
def test_each_unit_gets_only_the_secrets_its_process_uses(name: str) -> None:
    settings = unit_settings(UNITS / f"hotline-{name}.service")
    files = [Path(f) for f in settings.get("EnvironmentFile", [])]
    secrets = {f.stem for f in files if f.parent == Path("/etc/hotline/secrets")}
    inline = " ".join(settings.get("Environment", []))
    assert not any(
        f"{secret}=" in inline.replace("HOTLINE_SECRETS=", "") for secret in processes.SECRETS
    )
    # No secret on any command line, where every local user can read it (ps).
    assert "${" not in settings["ExecStart"][0] and "auth-token" not in settings["ExecStart"][0]
    # Its own Redis login, and no other process's.
    logins = {s for s in secrets if s.startswith("REDIS_PASSWORD_")}
    if name in REDIS_LOGIN:
        assert logins == {f"REDIS_PASSWORD_{name}"}
        assert f"REDIS_USERNAME={name}" in settings["Environment"]
    else:
        assert logins == set()
    secrets -= logins
    if name == "rasa":
        # Rasa runs no hotline code to check HOTLINE_SECRETS; ops/rasa_serve.py refuses no token.
        assert secrets == processes.SECRETS_NEEDED["rasa"]
        assert "/opt/hotline/ops/rasa_serve.py" in settings["ExecStart"][0]
        return
    assert secrets == processes.SECRETS_NEEDED[name]
    declared = next(v for v in settings["Environment"] if v.startswith("HOTLINE_SECRETS="))
    assert set(filter(None, declared.removeprefix("HOTLINE_SECRETS=").split(","))) == secrets


@pytest.mark.parametrize("name", sorted(SUPERVISED - {"rasa"}))
def test_each_unit_starts_a_module_that_exists(name: str) -> None:
    command = unit_settings(UNITS / f"hotline-{name}.service")["ExecStart"][0].split()
    assert command[:2] == ["/opt/hotline/.venv/bin/python", "-m"]
    module = command[2] if command[2] != "uvicorn" else command[-1].split(":")[0]
    assert importlib.util.find_spec(module) is not None, module


def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    root = tmp_path / "root"
    # verify checks that each ExecStart exists: stand-ins where the install would put them.
    for binary in (
        "opt/hotline/.venv/bin/python",
        "opt/hotline/.venv-rasa/bin/python",
        "opt/hotline/deploy/bin/hotline-redis-backup",
    ):
        path = root / binary
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    system = root / "etc/systemd/system"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    system.mkdir(parents=True)
    for unit in UNITS.iterdir():
        shutil.copy(unit, system / unit.name)
    names = sorted(p.name for p in UNITS.iterdir())
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", "--man=no", *names],
        check=False,
        cwd=system,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # verify exits 0 on unknown keys and bad values; it only says so.
    said = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and said == "", said


def _certificate(folder: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hotline.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = folder / "hotline.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


def _haproxy_accepts(tmp_path: Path, files: list[str], **variables: str) -> None:
    """`haproxy -c` over the shipped files, with a certificate and allow list of the test's."""
    allow = tmp_path / "allow.lst"
    allow.write_text("127.0.0.1/32\n")
    env = {
        **os.environ,
        "HOTLINE_TLS_CERT": str(_certificate(tmp_path)),
        "HOTLINE_CONSOLE_ALLOW": str(allow),
        **variables,
    }
    options = [option for name in files for option in ("-f", str(DEPLOY / "haproxy" / name))]
    result = subprocess.run(
        [tool("haproxy"), "-c", *options],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 0, said
    assert "[WARNING]" not in said and "[ALERT]" not in said, said


def test_haproxy_accepts_the_config(tmp_path: Path) -> None:
    _haproxy_accepts(tmp_path, ["haproxy.cfg"])


def test_haproxy_sends_only_twilios_paths_to_the_gateway() -> None:
    config = (DEPLOY / "haproxy/haproxy.cfg").read_text()
    assert re.search(r"acl twilio_path path /twilio/messages /twilio/status /healthz\n", config)
    assert "use_backend gateway if webhook_host twilio_path" in config
    assert "server gateway1 127.0.0.1:8000" in config and "server console1 127.0.0.1:8080" in config


def _redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(processes.redis_command(port, folder), stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if client.ping() and client.info("persistence")["loading"] == 0:
                return server
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _backup(port: int, folder: Path, **login: str) -> subprocess.CompletedProcess[str]:
    """deploy/bin/hotline-redis-backup against this Redis, with the unit's login if given."""
    return subprocess.run(
        [str(DEPLOY / "bin/hotline-redis-backup"), f"redis://127.0.0.1:{port}/0", str(folder)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **login},
    )


def _stop(server: subprocess.Popen[bytes], port: int) -> None:
    try:
        redis.Redis(port=port).shutdown(nosave=False)
    except redis.ConnectionError:
        pass
    server.wait(timeout=10)


def test_a_backup_restores_into_a_fresh_redis_and_survives_its_restart(tmp_path: Path) -> None:
    tool("redis-check-rdb")
    port = processes.free_port()
    live = _redis(port, tmp_path / "live")
    db = redis.Redis(port=port, decode_responses=True)
    db.hset("hotline:case:c1", mapping={"state": "claimed", "priority": "high"})
    db.xadd("hotline:inbound", {"entry": "sealed"})
    db.rpush("hotline:case:c1:events", "opened", "claimed")
    try:
        made = _backup(port, tmp_path / "backups")
    finally:
        _stop(live, port)
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip())
    assert backup.parent == tmp_path / "backups" and backup.stat().st_mode & 0o077 == 0

    restore = str(DEPLOY / "bin/hotline-redis-restore")
    occupied = tmp_path / "live"
    refused = subprocess.run(
        [restore, str(backup), str(occupied)], check=False, capture_output=True, text=True
    )
    assert refused.returncode == 1 and "not empty" in refused.stderr

    fresh = tmp_path / "fresh"
    env = {**os.environ, "HOTLINE_RESTORE_PORT": str(processes.free_port())}
    done = subprocess.run(
        [restore, str(backup), str(fresh)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "restored 3 keys" in done.stdout
    # Started the way production starts it (append-only on), twice: the AOF holds the data.
    for _ in range(2):
        port = processes.free_port()
        server = _redis(port, fresh)
        db = redis.Redis(port=port, decode_responses=True)
        try:
            assert db.hgetall("hotline:case:c1") == {"state": "claimed", "priority": "high"}
            assert db.lrange("hotline:case:c1:events", 0, -1) == ["opened", "claimed"]
            assert db.xlen("hotline:inbound") == 1
        finally:
            _stop(server, port)
    (fresh / "dump.rdb").unlink()  # not the snapshot: the append-only file must carry it
    port = processes.free_port()
    server = _redis(port, fresh)
    try:
        assert redis.Redis(port=port).exists("hotline:case:c1")
    finally:
        _stop(server, port)


def test_secrets_are_made_root_only_never_printed_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    acl = tmp_path / "hotline-users.acl"
    env = {**os.environ, "HOTLINE_PYTHON": sys.executable, "HOTLINE_REDIS_ACL": str(acl)}
    first = subprocess.run(
        [str(DEPLOY / "bin/hotline-make-secrets"), str(folder)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode == 0, first.stderr
    values = {p.stem: p.read_text().strip().split("=", 1)[1] for p in folder.iterdir()}
    assert set(values) == {
        "HOTLINE_SECRET",
        "HOTLINE_FERNET_KEY",
        "RASA_TOKEN",
        "HOTLINE_ACTION_TOKEN",
        "SENTINEL_PASSWORD",
        *(redis_users.secret_file(folder, user).stem for user in redis_users.RULES),
    }
    assert all(v not in first.stdout + first.stderr for v in values.values())
    # Redis's users: hashes of those passwords, readable by no other local user.
    assert acl.read_text() == redis_users.acl_file(
        {user: values[f"REDIS_PASSWORD_{user}"] for user in redis_users.RULES}
    )
    assert acl.stat().st_mode & 0o037 == 0
    assert not any(v in acl.read_text() for v in values.values())
    assert folder.stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.iterdir())
    Fernet(values["HOTLINE_FERNET_KEY"].encode())
    subprocess.run(
        [str(DEPLOY / "bin/hotline-make-secrets"), str(folder)],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert {p.stem: p.read_text().strip().split("=", 1)[1] for p in folder.iterdir()} == values


def test_redis_fsyncs_before_it_acknowledges_in_dev_and_in_production(tmp_path: Path) -> None:
    # An acknowledged webhook is never resent by Twilio, so it must be on disk before the
    # gateway answers: the dev server and the shipped config run with the same setting.
    port = processes.free_port()
    server = subprocess.Popen(
        processes.redis_command(port, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        db = redis.Redis(port=port)
        for _ in range(100):
            try:
                db.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        assert db.config_get("appendfsync") == {"appendfsync": "always"}
        assert db.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        server.terminate()
        server.wait(timeout=10)
    shipped = (DEPLOY / "redis" / "hotline.conf").read_text().splitlines()
    assert "appendfsync always" in shipped and "appendonly yes" in shipped


def test_the_backup_unit_logs_in_as_ops_and_nothing_less_will_do(tmp_path: Path) -> None:
    tool("redis-check-rdb")
    passwords = {user: redis_users.derived_password("k" * 32, user) for user in redis_users.RULES}
    acl = tmp_path / "users.acl"
    acl.write_text(redis_users.acl_file(passwords))
    port = processes.free_port()
    server = subprocess.Popen(
        processes.redis_command(port, tmp_path / "data", acl), stdout=subprocess.DEVNULL
    )
    operator = redis.Redis(port=port, username="ops", password=passwords["ops"])
    try:
        deadline = time.monotonic() + 10
        while not processes.port_answers("127.0.0.1", port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        operator.hset("hotline:case:c1", "state", "claimed")

        folder = tmp_path / "backups"
        assert _backup(port, folder).returncode != 0  # no password, no snapshot
        worker = _backup(port, folder, REDIS_USERNAME="worker", REDIS_PASSWORD=passwords["worker"])
        assert worker.returncode != 0  # a service may not copy the whole database
        made = _backup(port, folder, REDIS_USERNAME="ops", REDIS_PASSWORD=passwords["ops"])
        assert made.returncode == 0, made.stderr
        assert Path(made.stdout.strip()).stat().st_size > 0
        assert passwords["ops"] not in made.stdout + made.stderr
    finally:
        operator.shutdown(nosave=True)
        server.wait(timeout=10)


def test_haproxy_accepts_the_redis_config_beside_the_main_one(tmp_path: Path) -> None:
    """Past one machine: deploy/haproxy/redis.cfg, loaded as the operator loads it (beside
    haproxy.cfg). tests/ops/test_replicas.py runs this same file against a real failover."""
    _haproxy_accepts(
        tmp_path,
        ["haproxy.cfg", "redis.cfg"],
        HOTLINE_REDIS_BIND="127.0.0.1:6380",
        HOTLINE_REDIS_NODE1="127.0.0.1:6379",
        HOTLINE_REDIS_NODE2="127.0.0.1:6381",
        REDIS_PASSWORD="not-a-real-one-0123456789",
    )
    config = (DEPLOY / "haproxy/redis.cfg").read_text()
    # The password comes from the environment; the check finds the primary by its role.
    assert '"AUTH healthcheck ${REDIS_PASSWORD}\\r\\n"' in config
    assert "tcp-check expect string role:master" in config


def test_sentinel_watches_the_primary_with_its_own_login(tmp_path: Path) -> None:
    """deploy/redis/sentinel.conf, with its passwords appended as docs/operations.md says,
    started as Debian's redis-sentinel is (redis-server --sentinel) against a Redis with
    the hotline's users: it logs in as `sentinel` and reads the primary's INFO, and its own
    port answers nobody without the Sentinel password."""
    passwords = {user: redis_users.derived_password("k" * 32, user) for user in redis_users.RULES}
    acl = tmp_path / "users.acl"
    acl.write_text(redis_users.acl_file(passwords))
    port, sentinel_port = processes.free_port(), processes.free_port()
    server = subprocess.Popen(
        processes.redis_command(port, tmp_path / "data", acl), stdout=subprocess.DEVNULL
    )
    conf = tmp_path / "sentinel.conf"
    conf.touch(mode=0o600)
    text = (DEPLOY / "redis/sentinel.conf").read_text()
    assert "sentinel monitor hotline 127.0.0.1 6379 2\n" in text
    assert "auth-pass" not in text.replace("sentinel auth-pass hotline %s", "")
    assert "requirepass" not in text.replace("requirepass %s", "")
    own_password = "the-sentinels-own-0123456789"
    conf.write_text(
        text.replace("127.0.0.1 6379 2", f"127.0.0.1 {port} 2")
        + f"sentinel auth-pass hotline {passwords['sentinel']}\n"
        + f"requirepass {own_password}\n"
    )
    sentinel = subprocess.Popen(
        [
            "redis-server",
            str(conf),
            "--sentinel",
            "--port",
            str(sentinel_port),
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(
        port=sentinel_port, password=own_password, decode_responses=True, socket_timeout=1
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                master = client.sentinel_master("hotline")
                # A run id comes only from the primary's INFO, which needs the login.
                if master["runid"] and master["flags"] == "master":
                    break
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "Sentinel never read the primary's INFO"
            time.sleep(0.2)
        assert master["role-reported"] == "master", master
        # Without its password the Sentinel tells nothing and takes no order.
        stranger = redis.Redis(port=sentinel_port, decode_responses=True, socket_timeout=1)
        with pytest.raises(redis.AuthenticationError):
            stranger.sentinel_master("hotline")
        with pytest.raises(redis.AuthenticationError):
            stranger.execute_command("SENTINEL", "FAILOVER", "hotline")
    finally:
        sentinel.kill()
        sentinel.wait(10)
        server.kill()
        server.wait(10)
