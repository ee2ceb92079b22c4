"""`make run`: start every process under supervisord, keep them up, and say where to go.

Redis is started only when none answers at REDIS_URL. In dev mode (no Twilio account)
the sandbox stands in for Twilio, and secrets are generated once into var/dev.env.
A process that dies is restarted (ops/supervision.py) while the others go on serving.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import redis
from cryptography.fernet import Fernet

from hotline.settings import PROJECT_ROOT, REDIS_LOGIN, Settings
from hotline.store import login
from ops import processes, redis_users
from ops.supervision import STATE_KEY, STATE_TTL_SECONDS, LogFollower, Program, Supervisor, Watch

VAR = PROJECT_ROOT / "var"
DEV_ENV = VAR / "dev.env"
ACTION_PORT, RASA_PORT, GATEWAY_PORT, SANDBOX_PORT, CONSOLE_PORT = 5055, 5005, 8000, 8025, 8080
PORTS = {
    "actions": ACTION_PORT,
    "nlg": processes.NLG_PORT,
    "rasa": RASA_PORT,
    "gateway": GATEWAY_PORT,
    "sandbox": SANDBOX_PORT,
    "console": CONSOLE_PORT,
}
# Started first, stopped last: what the others lean on.
PRIORITY = {"redis": 10, "actions": 20, "nlg": 20, "rasa": 30}


@dataclass(frozen=True)
class Place:
    """Where one run lives: its var/ folder and its ports (the tests use a temporary one)."""

    var: Path = VAR
    ports: dict[str, int] = field(default_factory=lambda: dict(PORTS))
    model: Path = processes.MODEL


_DEV_SECRETS: dict[str, Callable[[], str]] = {
    "HOTLINE_SECRET": lambda: secrets.token_urlsafe(32),
    "HOTLINE_FERNET_KEY": lambda: Fernet.generate_key().decode(),
    "TWILIO_AUTH_TOKEN": lambda: secrets.token_hex(16),
    "RASA_TOKEN": lambda: secrets.token_urlsafe(24),
    "HOTLINE_ACTION_TOKEN": lambda: secrets.token_urlsafe(24),
    # Each process's Redis password is derived from it (ops/redis_users.py).
    processes.REDIS_KEY: lambda: secrets.token_urlsafe(32),
}
ACL_FILE = "users.acl"  # in the Redis data folder, var/redis/


def redis_logins(env: dict[str, str], place: Place) -> dict[str, dict[str, str]]:
    """Each user's login to the Redis the launcher starts (dev), its ACL file written.

    Empty when there is no HOTLINE_REDIS_KEY (a production run names its own logins)."""
    key = env.get(processes.REDIS_KEY)
    if not key:
        return {}
    passwords = {user: redis_users.derived_password(key, user) for user in redis_users.RULES}
    folder = place.var / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    acl = folder / ACL_FILE
    acl.touch(mode=0o600)
    acl.write_text(redis_users.acl_file(passwords))
    return {user: redis_users.credentials(user, passwords[user]) for user in redis_users.RULES}


def _read_env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def dev_secrets(var: Path = VAR) -> dict[str, str]:
    """Random per-machine secrets for dev mode, made on the first run and kept in var/."""
    dev_env = var / DEV_ENV.name
    if not dev_env.exists():
        var.mkdir(parents=True, exist_ok=True)
        dev_env.touch(mode=0o600)
    values = _read_env_file(dev_env)
    # A secret added in a later release is made on the next run; the ones kept stay as they are.
    missing = {name: make() for name, make in _DEV_SECRETS.items() if name not in values}
    if missing:
        with dev_env.open("a") as file:
            file.write("".join(f"{k}={v}\n" for k, v in missing.items()))
    return {**values, **missing}


def environment(place: Place = Place()) -> dict[str, str]:
    """The process environment: the operator's variables win over generated dev secrets."""
    env = dict(os.environ)
    if not env.get("TWILIO_ACCOUNT_SID"):
        for name, value in dev_secrets(place.var).items():
            env.setdefault(name, value)
    ports = place.ports
    # A Twilio account means production (hotline.settings refuses it in any other mode).
    env.setdefault("HOTLINE_ENV", "prod" if env.get("TWILIO_ACCOUNT_SID") else "dev")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("RASA_URL", f"http://127.0.0.1:{ports['rasa']}")
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{ports['gateway']}")
    env.setdefault("SANDBOX_URL", f"http://127.0.0.1:{ports['sandbox']}")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def operator_login(env: Mapping[str, str], place: Place = Place()) -> dict[str, str]:
    """The `ops` login to `make run`'s Redis, for the operator's commands in dev.

    Nothing when the environment names a Redis or a login of its own, in production, or
    when `make run` has not set up its users (var/redis/users.acl)."""
    if any(env.get(name) for name in ("REDIS_URL", "REDIS_USERNAME", "TWILIO_ACCOUNT_SID")):
        return {}
    dev_env = place.var / DEV_ENV.name
    if env.get("HOTLINE_ENV", "dev") != "dev" or not (place.var / "redis" / ACL_FILE).exists():
        return {}
    key = _read_env_file(dev_env).get(processes.REDIS_KEY) if dev_env.exists() else None
    if not key:
        return {}
    return redis_users.credentials("ops", redis_users.derived_password(key, "ops"))


def starts_redis(redis_url: str) -> bool:
    """Redis is started only when none answers at REDIS_URL."""
    url = urlparse(redis_url)
    return not processes.port_answers(url.hostname or "127.0.0.1", url.port or 6379)


def services(
    settings: Settings,
    env: dict[str, str],
    place: Place = Place(),
    logins: dict[str, dict[str, str]] | None = None,
    own_redis: bool | None = None,
) -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, command, environment) for each process to supervise; each gets only its secrets.

    With `logins` (the Redis the launcher starts has a user per process), each process gets
    its own and no other; without, they all use REDIS_USERNAME and REDIS_PASSWORD as given.
    `own_redis` is the caller's one look at whether Redis is to be started (None: look now)."""
    py, ports = sys.executable, place.ports
    uvicorn = [py, "-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log"]
    planned: list[tuple[str, list[str]]] = []
    if starts_redis(settings.redis_url) if own_redis is None else own_redis:
        acl = place.var / "redis" / ACL_FILE if logins else None
        port = urlparse(settings.redis_url).port or 6379
        planned.append(("redis", processes.redis_command(port, place.var / "redis", acl)))
    planned.append(("actions", processes.actions_command(ports["actions"])))
    planned.append(("nlg", processes.nlg_command(ports["nlg"])))
    if place.model.exists():
        planned.append(
            (
                "rasa",
                processes.rasa_command(ports["rasa"], place.model, log_dir=place.var / "log"),
            )
        )
    planned += [
        ("gateway", [*uvicorn, "--port", str(ports["gateway"]), "channels.gateway:app"]),
        ("worker", [py, "-m", "channels.worker"]),
        ("sender", [py, "-m", "channels.sender"]),
        (
            "console",
            [
                *uvicorn,
                "--port",
                str(ports["console"]),
                "--factory",
                "referral.console.main:create_app",
            ],
        ),
        ("housekeeping", [py, "-m", "referral.housekeeping"]),
    ]
    if settings.dev_mode:
        planned.append(
            ("sandbox", [*uvicorn, "--port", str(ports["sandbox"]), "channels.sandbox.app:app"])
        )
    extra = {
        "actions": {"SANIC_HOST": "127.0.0.1"},
        "rasa": processes.rasa_variables(settings, ports["actions"], ports["nlg"]),
    }

    def redis_login(name: str) -> dict[str, str]:
        if not logins:
            return {}
        return logins[name] if name in REDIS_LOGIN else {"REDIS_USERNAME": "", "REDIS_PASSWORD": ""}

    # HOTLINE_SECRETS names what the process must hold, as the systemd units say it.
    return [
        (
            name,
            command,
            {
                **processes.only_needed_secrets(name, env),
                **extra.get(name, {}),
                **redis_login(name),
                "HOTLINE_SECRETS": ",".join(sorted(processes.SECRETS_NEEDED[name])),
            },
        )
        for name, command in planned
    ]


def health_urls(settings: Settings, place: Place = Place()) -> list[tuple[str, str, str]]:
    """(process, health URL, what to print) in the order a newcomer needs them."""
    token = settings.rasa_token.get_secret_value()
    ports = place.ports
    local = "http://127.0.0.1"
    urls = [
        ("actions", f"{local}:{ports['actions']}/health", f"{local}:{ports['actions']} (internal)"),
        (
            "nlg",
            f"{local}:{ports['nlg']}/healthz",
            f"{local}:{ports['nlg']} (internal: the bot's words)",
        ),
        (
            "rasa",
            f"{local}:{ports['rasa']}/status?token={token}",
            f"{local}:{ports['rasa']} (internal, token in var/dev.env)",
        ),
        (
            "gateway",
            f"{local}:{ports['gateway']}/healthz",
            f"{settings.public_url}/twilio/messages (Twilio webhook)",
        ),
        (
            "console",
            f"{local}:{ports['console']}/healthz",
            f"{local}:{ports['console']}/ (counsellors)",
        ),
    ]
    if settings.dev_mode:
        urls.append(
            (
                "sandbox",
                f"{settings.sandbox_url}/healthz",
                f"{settings.sandbox_url}/ (text the hotline here)",
            )
        )
    return urls


LABELS = {
    "actions": "action server",
    "nlg": "NLG endpoint",
    "rasa": "Rasa",
    "sandbox": "sandbox phone",
}


def announce(
    settings: Settings, place: Place, running: set[str], say: Callable[[str], None]
) -> None:
    """Wait for every service to answer its health check, then print where to go."""
    started = time.monotonic()
    lines = []
    for name, url, shown in health_urls(settings, place):
        if name not in running:
            continue
        if not processes.wait_http(url, timeout=300):
            say(
                f"{LABELS.get(name, name)} did not become healthy in 300 s; the others go on. "
                f"See {place.var / 'log' / 'run' / (name + '.log')}"
            )
            return
        lines.append(f"  {LABELS.get(name, name):<14} {shown}")
    say("\n".join([f"hotline ready in {time.monotonic() - started:.1f}s:", *lines]))
    first_supervisor(settings, show_password=sys.stdout.isatty(), say=say)
    say(
        "  chat with the bot in a terminal: make shell LANG=pt|en|fr|sw\n"
        "A process that dies is restarted; Ctrl-C stops everything."
    )


def first_supervisor(
    settings: Settings, show_password: bool | None = None, say: Callable[[str], None] | None = None
) -> None:
    """In dev mode, the first run makes one supervisor account and shows its password once.

    The password is shown only to a person at a terminal: when the output goes to a file
    (scripts/with-hotline, CI) no account is made.
    """
    say = say or (lambda text: print(text, flush=True))
    if not settings.dev_mode:
        return
    from hotline.store import connect
    from referral import accounts

    db = connect(settings)
    if accounts.all_counsellors(db):
        return
    if show_password is None:
        show_password = bool(os.environ.get("HOTLINE_SHOW_PASSWORD"))
    if not show_password:
        say("  console login  none yet: `.venv/bin/hotline counsellor add NAME --role supervisor`")
        return
    password = accounts.generate_password()
    accounts.add(db, "supervisor", "supervisor", password, "en")
    say(
        f"  console login  supervisor / {password}  (shown once; add more with "
        "`.venv/bin/hotline counsellor add NAME`)"
    )


class _Publisher:
    """Writes the processes' states where the gateway's /healthz reads them."""

    def __init__(self, settings: Settings) -> None:
        self.db = redis.Redis.from_url(
            settings.redis_url,
            **login(settings),
            decode_responses=True,
            socket_timeout=1,
            socket_connect_timeout=1,
        )

    def __call__(self, record: dict[str, str]) -> None:
        try:
            with self.db.pipeline() as pipe:
                pipe.delete(STATE_KEY).hset(STATE_KEY, mapping=record)
                pipe.expire(STATE_KEY, STATE_TTL_SECONDS).execute()
        except (redis.RedisError, OSError):
            pass  # Redis is one of the processes that can be down; the terminal still says so


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(place: Place = Place()) -> int:
    """Supervise every process until Ctrl-C (or SIGTERM); returns supervisord's exit status."""
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            print(text, flush=True)

    env = environment(place)
    own_redis = starts_redis(env["REDIS_URL"])
    logins = redis_logins(env, place) if own_redis else {}
    if own_redis and not logins and env.get("HOTLINE_ENV") == "prod":
        # A Redis anyone on the machine could read and write: not for people's data.
        say(
            "production: the Redis this would start has no users; set HOTLINE_REDIS_KEY (each "
            "process's password is derived from it) or run Redis as deploy/redis/hotline.conf does"
        )
        return 1
    if logins:
        env.update(logins["ops"])  # the launcher's own: the health record, the first account
    else:
        say(
            "Redis was already running (or no HOTLINE_REDIS_KEY): the processes log in to it "
            "with REDIS_USERNAME and REDIS_PASSWORD as given"
        )
    os.environ.update(env)
    settings = Settings()
    planned = services(settings, env, place, logins, own_redis)
    if not place.model.exists():
        say(f"no trained model at {place.model}: Rasa is not started (make train)")
    programs = [
        Program(name, command, penv, PRIORITY.get(name, 40), 20 if name == "rasa" else 10)
        for name, command, penv in planned
    ]
    # Every user's password is a secret of supervisord's; each program gets its own at exec.
    held = {
        redis_users.password_variable(u): login["REDIS_PASSWORD"] for u, login in logins.items()
    }
    supervisor = Supervisor(
        programs, {**env, **held}, (*processes.SECRETS, *held), place.var, PROJECT_ROOT
    )
    follower = LogFollower(supervisor.logs, ["supervisord", *(p.name for p in programs)], say)
    watch = Watch(say, supervisor.logs, _Publisher(settings), {p.name: p.retries for p in programs})
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    follower.start()
    supervisor.start()
    try:
        if not supervisor.wait_started():
            say(f"supervisord did not start; see {supervisor.logs / 'supervisord.log'}")
            return 1
        running = {p.name for p in programs}
        threading.Thread(target=announce, args=(settings, place, running, say), daemon=True).start()
        while supervisor.process is not None and supervisor.process.poll() is None:
            try:
                watch.update(supervisor.states())
            except (OSError, http.client.HTTPException, xmlrpc.client.Error):
                pass  # supervisord is shutting down, or busy for a moment
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping every process …")
    finally:
        code = supervisor.stop()
        follower.stop()
    say("stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m ops.launcher [--var DIR] [--port NAME=PORT …]`: a run somewhere else."""
    parser = argparse.ArgumentParser(prog="python -m ops.launcher", description=__doc__)
    parser.add_argument("--var", type=Path, default=VAR)
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="NAME=PORT",
        help=f"one of {', '.join(PORTS)}",
    )
    args = parser.parse_args(argv)
    ports = dict(PORTS)
    for pair in args.port:
        name, _, number = pair.partition("=")
        if name not in PORTS or not number.isdigit():
            parser.error(f"--port {pair}: expected NAME=PORT with NAME one of {', '.join(PORTS)}")
        ports[name] = int(number)
    return run(Place(var=args.var.resolve(), ports=ports))


if __name__ == "__main__":
    sys.exit(main())
