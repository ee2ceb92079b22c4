"""`make run` under fire: the real supervised stack, each process killed with SIGKILL in turn.

The stack is `python -m ops.launcher` in a temporary var/ folder on free ports, with its
own Redis. After each kill the others must keep their pids and keep answering, the killed
process must be back within seconds, the terminal must say so, and a text sent on the
sandbox phone must still be answered. Rasa is included when the model exists (always in CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hotline import keys
from hotline.ids import conversation_id
from hotline.settings import REDIS_LOGIN
from ops import processes, redis_users
from ops.launcher import PORTS
from ops.supervision import STATE_KEY, Control, Program, Supervisor, Watch

# The whole stack, Rasa included, for minutes: the fast lane leaves it to make test.
pytestmark = pytest.mark.needs_model

HAS_MODEL = processes.MODEL.exists()
NAMES = [
    "redis",
    "actions",
    "nlg",
    *(["rasa"] if HAS_MODEL else []),
    "gateway",
    "worker",
    "sender",
    "console",
    "housekeeping",
    "sandbox",
]
SECRET_NAMES = processes.SECRETS
NUMBER = "+258840000777"


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    var: Path
    output: Path
    ports: dict[str, int]
    redis_url: str
    control: Control

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def states(self) -> dict[str, dict]:
        return self.control.states()

    def health(self, name: str) -> str | None:
        token = self.secrets()["RASA_TOKEN"]
        paths = {
            "actions": "/health",
            "nlg": "/healthz",
            "rasa": f"/status?token={token}",
            "gateway": "/healthz",
            "console": "/healthz",
            "sandbox": "/healthz",
        }
        return f"http://127.0.0.1:{self.ports[name]}{paths[name]}" if name in paths else None

    def secrets(self) -> dict[str, str]:
        lines = (self.var / "dev.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def redis_passwords(self) -> dict[str, str]:
        """Each Redis user's password, as the launcher derives it from var/dev.env."""
        key = self.secrets()[processes.REDIS_KEY]
        return {user: redis_users.derived_password(key, user) for user in redis_users.RULES}

    def db(self) -> redis.Redis:
        """Redis as the operator's tools reach it: the `ops` user."""
        return redis.Redis.from_url(
            self.redis_url,
            username="ops",
            password=self.redis_passwords()["ops"],
            decode_responses=True,
        )


def _wait(condition, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # a service coming back answers with errors first
            if condition():
                return True
        time.sleep(every)
    return False


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if os.environ.get("CI") and not HAS_MODEL:
        pytest.fail(
            f"no model at {processes.MODEL}: CI trains before the tests, so Rasa must be covered"
        )
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run the tests through `make test`")
    # A short path: supervisord's unix socket lives in var/ and socket paths are limited.
    var = Path(tempfile.mkdtemp(prefix="hl-run-"))
    ports = {name: processes.free_port() for name in PORTS}
    redis_url = f"redis://127.0.0.1:{processes.free_port()}/0"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HOTLINE_", "TWILIO_", "RASA_", "REDIS_", "PUBLIC_URL", "SANDBOX_URL"))
    }
    env |= {"REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    output = var / "terminal.txt"
    command = [
        sys.executable,
        "-m",
        "ops.launcher",
        "--var",
        str(var),
        *(f"--port={name}={port}" for name, port in ports.items()),
    ]
    with output.open("wb") as sink:
        # Its own session, so the test can send Ctrl-C's SIGINT to the whole group like a terminal.
        launcher = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=processes.PROJECT_ROOT,
            start_new_session=True,
        )
    built = Stack(launcher, var, output, ports, redis_url, Control(var))
    try:
        ready = _wait(
            lambda: "hotline ready" in built.text() or launcher.poll() is not None, 420, 0.5
        )
        assert ready and launcher.poll() is None, (
            f"the stack did not come up:\n{built.text()[-4000:]}"
        )
        yield built
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGINT)
            try:
                launcher.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
        shutil.rmtree(var, ignore_errors=True)


def _answered(stack: Stack, body: str = "HELP", number: str = NUMBER) -> bool:
    """A HELP texted on the sandbox phone comes back: gateway, Redis, worker, sender, sandbox."""
    phone = f"http://127.0.0.1:{stack.ports['sandbox']}"
    thread = {"channel": "sms", "number": number}

    def replies() -> int:
        shown = httpx.post(f"{phone}/phone/thread", json=thread, timeout=5).json()["messages"]
        return sum(1 for message in shown if message["direction"] == "out")

    before = replies()
    sent = httpx.post(f"{phone}/phone/send", json={**thread, "body": body}, timeout=10)
    assert sent.status_code == 200 and sent.json()["webhook_status"] == 200, sent.text
    return _wait(lambda: replies() > before, 60)


def test_every_process_is_supervised_and_running(stack: Stack) -> None:
    states = stack.states()
    assert sorted(states) == sorted(NAMES)
    assert {name: info["statename"] for name, info in states.items()} == dict.fromkeys(
        NAMES, "RUNNING"
    )
    assert _answered(stack)


@pytest.mark.skipif(not HAS_MODEL, reason="Rasa runs only with a trained model")
def test_a_text_rasa_answers_passes_every_login(stack: Stack) -> None:
    """Gateway, worker, Rasa (its tracker), actions, sender and sandbox, each its own user."""
    number = "+258840000778"
    assert _answered(stack, "Olá, quero voltar para casa, como faço?", number)
    secret = stack.secrets()["HOTLINE_SECRET"]
    assert stack.db().exists(keys.tracker(conversation_id(number, secret)))


def test_redis_refuses_a_caller_without_its_password(stack: Stack) -> None:
    for login in ({}, {"username": "worker", "password": "wrong"}, {"username": "default"}):
        client = redis.Redis.from_url(
            stack.redis_url, retry=Retry(NoBackoff(), 0), socket_timeout=5, **login
        )
        with pytest.raises(redis.AuthenticationError):
            client.hgetall(STATE_KEY)
    rasa = redis.Redis.from_url(
        stack.redis_url, username="rasa", password=stack.redis_passwords()["rasa"]
    )
    with pytest.raises(redis.exceptions.NoPermissionError):
        rasa.hgetall(STATE_KEY)  # Rasa's user reaches its trackers only


def test_the_health_record_in_redis_names_every_process(stack: Stack) -> None:
    db = stack.db()
    assert _wait(lambda: db.hgetall(STATE_KEY) == dict.fromkeys(NAMES, "RUNNING"), 30), db.hgetall(
        STATE_KEY
    )
    assert 0 < db.ttl(STATE_KEY) <= 15


@pytest.mark.parametrize("name", NAMES)
def test_sigkill_leaves_the_others_serving_and_the_process_back(stack: Stack, name: str) -> None:
    settled = _wait(lambda: all(i["statename"] == "RUNNING" for i in stack.states().values()), 30)
    before = stack.states()
    assert settled, {n: i["statename"] for n, i in before.items()}
    pids = {n: info["pid"] for n, info in before.items()}
    printed = len(stack.text())

    os.kill(pids[name], signal.SIGKILL)

    # The others were not touched, and every other web service still answers.
    for other in NAMES:
        url = stack.health(other)
        if other != name and url:
            assert httpx.get(url, timeout=15).status_code in (200, 503), f"{other} stopped serving"
    assert _wait(lambda: stack.states()[name]["pid"] not in (0, pids[name]), 10), (
        f"{name} was not restarted"
    )
    # RUNNING once it has stayed up for supervisord's startsecs (5 s).
    assert _wait(lambda: stack.states()[name]["statename"] == "RUNNING", 30), stack.states()[name]
    url = stack.health(name)
    if url:
        assert processes.wait_http(url, timeout=240 if name == "rasa" else 60), (
            f"{name} not healthy again"
        )
    after = stack.states()
    assert {n: info["pid"] for n, info in after.items() if n != name} == {
        n: pid for n, pid in pids.items() if n != name
    }, "another process was restarted too"
    back = f"{name} is back (pid {after[name]['pid']})"
    # The terminal is written by the launcher's own poll, a moment after supervisord's state.
    assert _wait(lambda: back in stack.text()[printed:], 5), stack.text()[printed:][-3000:]
    told = stack.text()[printed:]
    assert f"{name} stopped unexpectedly; restarting it, the others go on" in told
    assert f"exited: {name} (terminated by SIGKILL; not expected)" in told
    assert _answered(stack)


def test_no_secret_reaches_the_terminal_or_the_supervisor_config(stack: Stack) -> None:
    secrets = stack.secrets()
    assert set(secrets) == set(SECRET_NAMES)
    shown = stack.text() + (stack.var / "supervisord.conf").read_text()
    for name, value in secrets.items():
        assert value not in shown, f"{name} was printed"
    for user, password in stack.redis_passwords().items():
        assert password not in shown, f"{user}'s Redis password was printed"
    assert not any(p in (stack.var / "redis" / "users.acl").read_text() for p in secrets.values())


HELD = {  # process: (secrets it must hold, secrets it must not)
    "actions": (set(), {"TWILIO_AUTH_TOKEN", "HOTLINE_FERNET_KEY", "HOTLINE_SECRET", "RASA_TOKEN"}),
    "nlg": (set(), {"TWILIO_AUTH_TOKEN", "HOTLINE_FERNET_KEY", "HOTLINE_SECRET", "RASA_TOKEN"}),
    **(
        {"rasa": (set(), {"TWILIO_AUTH_TOKEN", "HOTLINE_FERNET_KEY", "HOTLINE_SECRET"})}
        if HAS_MODEL
        else {}
    ),
    "gateway": ({"TWILIO_AUTH_TOKEN", "HOTLINE_FERNET_KEY", "HOTLINE_SECRET"}, {"RASA_TOKEN"}),
    "sender": ({"TWILIO_AUTH_TOKEN", "HOTLINE_FERNET_KEY"}, {"HOTLINE_SECRET", "RASA_TOKEN"}),
    "console": ({"HOTLINE_FERNET_KEY", "RASA_TOKEN"}, {"TWILIO_AUTH_TOKEN", "HOTLINE_SECRET"}),
}


@pytest.mark.parametrize("name", sorted(HELD))
def test_each_process_holds_only_the_secrets_it_uses(stack: Stack, name: str) -> None:
    # redis-server writes its title over its environment, so it is checked through the config.
    environ = Path(f"/proc/{stack.states()[name]['pid']}/environ").read_bytes().split(b"\0")
    given = dict(entry.decode().split("=", 1) for entry in environ if b"=" in entry)
    names = set(given)
    must, must_not = HELD[name]
    assert "REDIS_URL" in names  # the environment was read, not an empty file
    assert must <= names
    assert not names & must_not
    # Its own Redis login, and nobody else's password.
    assert processes.REDIS_KEY not in names
    assert not any(n.startswith("REDIS_PASSWORD_") for n in names)
    if name in REDIS_LOGIN:
        assert given["REDIS_USERNAME"] == name
        assert given["REDIS_PASSWORD"] == stack.redis_passwords()[name]
    else:
        assert given.get("REDIS_PASSWORD", "") == ""


def test_ctrl_c_stops_everything(stack: Stack) -> None:
    pids = [info["pid"] for info in stack.states().values()]
    os.killpg(stack.process.pid, signal.SIGINT)
    assert stack.process.wait(timeout=90) == 0
    assert stack.text().rstrip().endswith("stopped")
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_a_process_that_keeps_dying_is_given_up_and_reported_plainly(tmp_path: Path) -> None:
    """The real supervisord with one program that always fails at start."""
    var = Path(tempfile.mkdtemp(prefix="hl-fatal-"))
    said: list[str] = []
    records: list[dict[str, str]] = []
    crashing = Program(
        "crasher", [sys.executable, "-c", "import sys; sys.exit(3)"], dict(os.environ), retries=2
    )
    steady = Program(
        "steady", [sys.executable, "-c", "import time; time.sleep(600)"], dict(os.environ)
    )
    supervisor = Supervisor([crashing, steady], dict(os.environ), SECRET_NAMES, var, tmp_path)
    watch = Watch(said.append, supervisor.logs, records.append, {"crasher": 2})
    supervisor.start()
    try:
        assert supervisor.wait_started()

        def given_up() -> bool:
            watch.update(supervisor.states())
            return watch.seen.get("crasher") == "FATAL"

        # Backoff of 1 s, then 2 s, between the three starts.
        assert _wait(given_up, 30, 0.1)
        assert "crasher died while starting; trying again after a longer pause" in said
        assert any(
            line.startswith("crasher is DOWN and no longer restarted: it failed 3 starts")
            and "The others go on" in line
            for line in said
        ), said
        assert supervisor.states()["steady"]["statename"] in ("STARTING", "RUNNING")
        assert Watch.down(records[-1]) == ["crasher"]
    finally:
        supervisor.stop()
        shutil.rmtree(var, ignore_errors=True)


def test_a_process_dying_often_after_it_started_is_reported_as_flapping(tmp_path: Path) -> None:
    said: list[str] = []
    records: list[dict[str, str]] = []
    watch = Watch(said.append, tmp_path, records.append)
    for minute in range(5):
        watch.update({"worker": {"statename": "RUNNING", "pid": 10 + minute}}, now=minute * 60.0)
        watch.update({"worker": {"statename": "EXITED", "pid": 0}}, now=minute * 60.0 + 30)
    watch.update({"worker": {"statename": "RUNNING", "pid": 99}}, now=300.0)
    assert said.count("worker stopped unexpectedly; restarting it, the others go on") == 5
    assert any(line.startswith("worker keeps dying: 5 times in 5 min") for line in said), said
    assert records[-1] == {"worker": "FLAPPING"}
    assert said[-1] == "worker is back (pid 99)"
