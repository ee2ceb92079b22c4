"""Past one machine, on one machine: the multi-replica layout on loopback ports in one folder.

Redis as a primary and a replica (the ACL users of ops/redis_users.py, the replica logging in
as `replica`), three Sentinels (quorum 2) and HAProxy in front of everything replicated: Redis
through deploy/haproxy/redis.cfg, the production file itself (the primary found by a
tcp-check on `role:master`), two gateways and two Rasa servers sharing the tracker and lock
stores. Behind them three workers in one consumer group, one sender, the action server, NLG
and the sandbox, each started from the definitions `make run` uses (ops/launcher.services).

Every client of the replicated Redis, Rasa included, reaches it through HAProxy, never
through Sentinel itself: Rasa 3.6's RedisTrackerStore and RedisLockStore
(rasa/core/tracker_store.py, rasa/core/lock_store.py) build one `redis.StrictRedis(host,
port, ...)` and take no Sentinel option, and a worker must see the primary Rasa writes to,
or it would look for a turn in a tracker Rasa is not writing. One way of following the
primary for all of them is one view of it.

The sandbox stands in for Twilio's servers, so it keeps its messages in a Redis of its own:
a failover of ours is no failover of Twilio's. The console and housekeeping are left out;
they hold no part of a message's path.

`Topology.restart_redis` is the supervisor's part after a crash: a node that was the primary
comes back as a replica of the one the Sentinels elected since (started as it was, it would
claim to be the primary with stale data until a Sentinel told it otherwise).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from hotline.settings import PROJECT_ROOT, Settings
from ops import launcher, processes

MASTER_NAME = "hotline"
HAPROXY = "/usr/sbin/haproxy"
REDIS_CFG = PROJECT_ROOT / "deploy" / "haproxy" / "redis.cfg"
# Short, so a test sees a failover in seconds (deploy/redis/sentinel.conf has production's).
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _private(path: Path, text: str) -> Path:
    """A file only its owner reads: the Redis and Sentinel configs hold passwords."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)
    return path


@dataclass
class Process:
    """One process of the layout, in its own session so its helpers end with it."""

    name: str
    command: list[str]
    env: Mapping[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.popen = subprocess.Popen(
            self.command,
            env=dict(self.env),
            cwd=PROJECT_ROOT,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """A crash: SIGKILL to the process alone, nothing finished."""
        if self.alive:
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait()

    def stop(self) -> None:
        """The end of the run: the whole session of this process (its own children too)."""
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def output(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@dataclass
class RedisNode:
    """One replicated Redis: its port, folder and the config file Sentinel rewrites."""

    name: str
    port: int
    folder: Path
    acl: Path
    replication_password: str
    process: Process | None = None

    def command(self, primary_port: int | None) -> list[str]:
        # The replica's login to its primary (masteruser/masterauth) is in the file, never on
        # the command line; every node has it, since any node may become a replica.
        lines = ["masteruser replica", f"masterauth {self.replication_password}"]
        # A replica that (re)joins is synced at once, not after Redis' default 5 s wait for
        # others to join the same sync: until it is, no write can be confirmed on it.
        lines.append("repl-diskless-sync-delay 0")
        if primary_port is not None:
            lines.append(f"replicaof 127.0.0.1 {primary_port}")
        conf = _private(self.folder / "redis.conf", "\n".join(lines) + "\n")
        base = processes.redis_command(self.port, self.folder, self.acl)
        return [base[0], str(conf), *base[1:]]

    def start(self, primary_port: int | None, log: Path) -> None:
        self.process = Process(self.name, self.command(primary_port), os.environ, log).start()


@dataclass
class Topology:
    """The whole layout; `start()` returns once every part answers."""

    folder: Path
    model: Path = processes.MODEL
    gateways: int = 2
    workers: int = 3
    rasas: int = 2
    # HOTLINE_REDIS_ACK_REPLICAS for the gateway and the sender (0: acknowledge unconfirmed).
    ack_replicas: int = 1
    # Secrets to use instead of generated ones (the tests sign webhooks with their own token).
    secrets: Mapping[str, str] = field(default_factory=dict)
    # Extra variables for every hotline process and for Rasa (e.g. TICKET_LOCK_LIFETIME).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    rasa_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.logs = self.folder / "log"
        self.logs.mkdir(exist_ok=True)
        self.place = launcher.Place(var=self.folder / "var", model=self.model)
        self.place.var.mkdir(exist_ok=True)
        seed = self.place.var / launcher.DEV_ENV.name
        _private(seed, "".join(f"{k}={v}\n" for k, v in self.secrets.items()))
        self.ports = {
            name: processes.free_port()
            for name in ("redis", "sandbox_redis", "gateway", "rasa", "actions", "nlg", "sandbox")
        }
        self.nodes: list[RedisNode] = []
        self.sentinel_ports = [processes.free_port() for _ in range(3)]
        self.sentinel_password = secrets.token_urlsafe(24)
        self.processes: dict[str, Process] = {}

    # ---------------------------------------------------------------- addresses

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['rasa']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    def password(self, user: str) -> str:
        return self.logins[user]["REDIS_PASSWORD"]

    def db(self, port: int | None = None, **options) -> redis.Redis:
        """Redis as the operator's tools reach it (`ops`), through HAProxy unless `port`."""
        return redis.Redis(
            port=port or self.ports["redis"],
            username="ops",
            password=self.password("ops"),
            decode_responses=True,
            **options,
        )

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(
            port=self.sentinel_ports[index],
            password=self.sentinel_password,
            decode_responses=True,
            socket_timeout=1,
        )

    def primary_port(self) -> int | None:
        """The primary's port as the Sentinels name it (the first that answers)."""
        for index in range(len(self.sentinel_ports)):
            try:
                address = self.sentinel(index).sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def node(self, port: int) -> RedisNode:
        return next(node for node in self.nodes if node.port == port)

    # ---------------------------------------------------------------- starting

    def start(self, timeout: float = 300) -> Topology:
        env = launcher.environment(self.place)
        env |= {
            "REDIS_URL": self.redis_url,
            "RASA_URL": self.rasa_url,
            "PUBLIC_URL": self.public_url,
            "SANDBOX_URL": self.sandbox_url,
            "HOTLINE_REDIS_ACK_REPLICAS": str(self.ack_replicas),
            **self.extra_env,
        }
        env.pop("REDIS_USERNAME", None), env.pop("REDIS_PASSWORD", None)
        self.env = env
        # Writes var/redis/users.acl (0600) and gives each user its password.
        self.logins = launcher.redis_logins(env, self.place)
        acl = self.place.var / "redis" / launcher.ACL_FILE
        self._start_redis(acl)
        self._start_sentinels()
        self._start_haproxy()
        self._wait_redis_through_haproxy(timeout=30)
        # What the test process and the services read: the same variables, as settings.
        values: dict[str, Any] = {
            k: v for k, v in env.items() if k.startswith(("HOTLINE_", "REDIS_", "RASA_"))
        }
        self.settings = Settings(
            **values,
            TWILIO_AUTH_TOKEN=env["TWILIO_AUTH_TOKEN"],
            PUBLIC_URL=self.public_url,
            SANDBOX_URL=self.sandbox_url,
        )
        self._start_services(acl)
        self._wait_healthy(timeout)
        return self

    def _start_redis(self, acl: Path) -> None:
        password = self.password("replica")
        ports = [processes.free_port(), processes.free_port()]
        for index, port in enumerate(ports):
            folder = self.folder / f"redis{index + 1}"
            folder.mkdir(exist_ok=True)
            self.nodes.append(RedisNode(f"redis{index + 1}", port, folder, acl, password))
        for index, node in enumerate(self.nodes):
            node.start(None if index == 0 else ports[0], self.logs / f"{node.name}.log")
        replica = self.db(self.nodes[1].port, socket_timeout=1)
        _wait(lambda: replica.info("replication")["master_link_status"] == "up", 20, "replication")

    def _start_sentinels(self) -> None:
        primary = self.nodes[0].port
        for index, port in enumerate(self.sentinel_ports):
            folder = self.folder / f"sentinel{index + 1}"
            folder.mkdir(exist_ok=True)
            conf = _private(
                folder / "sentinel.conf",
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        f"dir {folder}",
                        "sentinel resolve-hostnames no",
                        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2",
                        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                        f"sentinel parallel-syncs {MASTER_NAME} 1",
                        f"sentinel auth-user {MASTER_NAME} sentinel",
                        f"sentinel auth-pass {MASTER_NAME} {self.password('sentinel')}",
                        # As deploy/redis/sentinel.conf: the Sentinels' own port is closed too.
                        f"requirepass {self.sentinel_password}",
                    ]
                )
                + "\n",
            )
            self.processes[f"sentinel{index + 1}"] = Process(
                f"sentinel{index + 1}",
                ["redis-server", str(conf), "--sentinel"],
                os.environ,
                self.logs / f"sentinel{index + 1}.log",
            ).start()

        def everyone_sees_everyone() -> bool:
            for index in range(len(self.sentinel_ports)):
                state = self.sentinel(index).sentinel_master(MASTER_NAME)
                if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                    return False
            return True

        _wait(everyone_sees_everyone, 30, "the Sentinels to find each other and the replica")

    def _backend(self, name: str, ports: list[int], check: str) -> list[str]:
        lines = [f"backend {name}", *check.splitlines()]
        lines += [
            f"    server {name}{index + 1} 127.0.0.1:{port} check inter 500ms fall 2 rise 1"
            for index, port in enumerate(ports)
        ]
        return lines

    def _start_haproxy(self) -> None:
        self.gateway_ports = [processes.free_port() for _ in range(self.gateways)]
        self.rasa_ports = [processes.free_port() for _ in range(self.rasas)]
        lines = [
            "global",
            "    maxconn 2000",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    option redispatch",
            "    retries 2",
            "frontend gateway",
            f"    bind 127.0.0.1:{self.ports['gateway']}",
            "    default_backend gateways",
            "frontend rasa",
            f"    bind 127.0.0.1:{self.ports['rasa']}",
            "    default_backend rasas",
            # A webhook is idempotent (its MessageSid), so one the dead gateway never answered
            # goes to the other; a message to Rasa only when it never reached the dead one.
            *self._backend(
                "gateways",
                self.gateway_ports,
                "    option httpchk GET /healthz\n"
                "    retry-on conn-failure empty-response response-timeout",
            ),
            *self._backend(
                "rasas", self.rasa_ports, "    option httpchk GET /\n    retry-on conn-failure"
            ),
        ]
        conf = _private(self.folder / "haproxy.cfg", "\n".join(lines) + "\n")
        env = {
            **os.environ,
            "HOTLINE_REDIS_BIND": f"127.0.0.1:{self.ports['redis']}",
            "HOTLINE_REDIS_NODE1": f"127.0.0.1:{self.nodes[0].port}",
            "HOTLINE_REDIS_NODE2": f"127.0.0.1:{self.nodes[1].port}",
            "REDIS_PASSWORD": self.password("healthcheck"),
        }
        self.processes["haproxy"] = Process(
            "haproxy",
            [HAPROXY, "-db", "-f", str(conf), "-f", str(REDIS_CFG)],
            env,
            self.logs / "haproxy.log",
        ).start()

    def _wait_redis_through_haproxy(self, timeout: float) -> None:
        db = self.db(socket_timeout=1, socket_connect_timeout=1)
        _wait(
            lambda: db.info("replication")["role"] == "master" and db.set("replicas:up", "1"),
            timeout,
            "HAProxy to reach the primary",
        )

    def _service(self, name: str, place: launcher.Place) -> tuple[list[str], dict[str, str]]:
        own = launcher.services(self.settings, self.env, place, self.logins, own_redis=False)
        command, env = next((c, e) for n, c, e in own if n == name)
        return command, env

    def _place(self, label: str, **ports: int) -> launcher.Place:
        var = self.folder / label
        var.mkdir(exist_ok=True)
        return launcher.Place(var=var, ports={**self.place.ports, **ports}, model=self.model)

    def _start_services(self, acl: Path) -> None:
        shared = {
            "actions": self.ports["actions"],
            "nlg": self.ports["nlg"],
            "sandbox": self.ports["sandbox"],
        }
        # Rasa first: it takes the longest to come up.
        for index, port in enumerate(self.rasa_ports):
            command, env = self._service(
                "rasa", self._place(f"rasa{index + 1}", rasa=port, **shared)
            )
            self._run(f"rasa{index + 1}", command, {**env, **self.rasa_env})
        base = self._place("services", **shared)
        for name in ("actions", "nlg"):
            self._run(name, *self._service(name, base))
        sandbox_redis = self.folder / "sandbox-redis"
        self._run(
            "sandbox-redis",
            processes.redis_command(self.ports["sandbox_redis"], sandbox_redis, acl),
            dict(os.environ),
        )
        command, env = self._service("sandbox", base)
        self._run(
            "sandbox",
            command,
            {**env, "REDIS_URL": f"redis://127.0.0.1:{self.ports['sandbox_redis']}/0"},
        )
        for index, port in enumerate(self.gateway_ports):
            command, env = self._service(
                "gateway", self._place(f"gateway{index + 1}", gateway=port, **shared)
            )
            self._run(f"gateway{index + 1}", command, env)
        for index in range(self.workers):
            self._run(f"worker{index + 1}", *self._service("worker", base))
        self._run("sender", *self._service("sender", base))

    def _run(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        self.processes[name] = Process(name, command, env, self.logs / f"{name}.log").start()

    def _wait_healthy(self, timeout: float) -> None:
        token = self.settings.rasa_token.get_secret_value()
        urls = {
            "actions": f"http://127.0.0.1:{self.ports['actions']}/health",
            "nlg": f"http://127.0.0.1:{self.ports['nlg']}/healthz",
            "sandbox": f"{self.sandbox_url}/healthz",
            **{
                f"gateway{i + 1}": f"http://127.0.0.1:{p}/healthz"
                for i, p in enumerate(self.gateway_ports)
            },
            **{
                f"rasa{i + 1}": f"http://127.0.0.1:{p}/status?token={token}"
                for i, p in enumerate(self.rasa_ports)
            },
        }
        deadline = time.monotonic() + timeout
        for name, url in urls.items():
            left = max(1.0, deadline - time.monotonic())
            if not processes.wait_http(url, left):
                raise RuntimeError(f"{name} did not start: {self.processes[name].output()}")
        dead = [name for name, process in self.processes.items() if not process.alive]
        if dead:
            raise RuntimeError(
                f"{', '.join(dead)} died at start: {self.processes[dead[0]].output()}"
            )

    # ---------------------------------------------------------------- faults and the end

    def kill_primary(self) -> RedisNode:
        """SIGKILL the node the Sentinels call the primary."""
        port = self.primary_port()
        assert port is not None, "no Sentinel names a primary"
        node = self.node(port)
        assert node.process is not None
        node.process.kill()
        return node

    def restart_redis(self, node: RedisNode, failover_within: float = 30) -> None:
        """Start a crashed node again, as a replica of the primary the Sentinels name. A node
        that was the primary waits for them to name another first (a failover takes
        seconds): back too soon, it would still be the primary, and with stale data."""
        deadline = time.monotonic() + failover_within
        primary = self.primary_port()
        while primary == node.port and time.monotonic() < deadline:
            time.sleep(0.1)
            primary = self.primary_port()
        node.start(primary if primary != node.port else None, self.logs / f"{node.name}.log")

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        for node in self.nodes:
            if node.process:
                node.process.stop()


def _wait(condition, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError, KeyError) as error:
            last = error
        time.sleep(every)
    raise RuntimeError(f"gave up waiting for {what} ({type(last).__name__ if last else 'no'})")
