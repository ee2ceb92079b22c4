"""`make run`'s supervisor: supervisord restarts whatever dies; this module drives it.

supervisord (PyPI `supervisor`) does the supervising: each process in its own process group,
restarted when it dies, with a growing pause between failed starts and a FATAL state when it
keeps failing. This module writes its configuration into var/, starts it in the foreground,
shows every process's output with its name in front, says plainly when a process dies,
comes back or is given up, and publishes each process's state to Redis for /healthz.
"""

from __future__ import annotations

import http.client
import os
import shlex
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from hotline import keys

SUPERVISORD = Path(sys.executable).with_name("supervisord")

# Where /healthz reads which part is down; refreshed every poll, gone soon after the launcher.
STATE_KEY = keys.SUPERVISION_KEY
STATE_TTL_SECONDS = 15

# A start that dies within START_SECONDS is a failed start: supervisord waits 1 s, 2 s, 3 s …
# between tries and gives up (FATAL) after START_RETRIES. A process that ran longer is
# restarted at once; dying FLAP_LIMIT times within FLAP_WINDOW is reported as flapping.
START_SECONDS = 5
START_RETRIES = 5
FLAP_LIMIT, FLAP_WINDOW = 5, 300.0
DOWN_STATES = {"STOPPED", "EXITED", "BACKOFF", "FATAL", "UNKNOWN"}


@dataclass(frozen=True)
class Program:
    """One supervised process: its name, its command and its whole environment."""

    name: str
    command: list[str]
    env: Mapping[str, str]
    priority: int = 50
    stop_seconds: int = 10
    retries: int = START_RETRIES


def _escape(text: str) -> str:
    # supervisord expands %(name)s in its values, so a literal % is written %%.
    return text.replace("%", "%%")


def _quoted(value: str) -> str:
    return '"' + _escape(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def config(
    programs: Iterable[Program],
    base: Mapping[str, str],
    secrets: Iterable[str],
    var: Path,
    cwd: Path,
) -> str:
    """supervisord.conf for `programs`, started with environment `base`.

    No secret's value is written: a secret a program needs reaches it from supervisord's own
    environment (or as %(ENV_NAME)s on its command line), and one it does not need is removed
    from its environment with `env -u`.
    """
    logs = var / "log" / "run"
    secret_values = {base[name]: name for name in secrets if base.get(name)}
    sections = [
        "[unix_http_server]",
        f"file={_escape(str(var / 'supervisor.sock'))}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        "silent=true",
        "loglevel=info",
        # Said explicitly as root, or supervisord warns about it at every start.
        *(["user=root"] if os.geteuid() == 0 else []),
        f"logfile={_escape(str(logs / 'supervisord.log'))}",
        "logfile_maxbytes=5MB",
        f"pidfile={_escape(str(var / 'supervisord.pid'))}",
        f"childlogdir={_escape(str(logs))}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
    ]
    for program in programs:
        removed = sorted(k for k in base if k not in program.env)
        added = {k: v for k, v in program.env.items() if base.get(k) != v}
        # A secret under another name (each process's own REDIS_PASSWORD): copied at exec.
        copies = {
            k: secret_values[v]
            for k, v in added.items()
            if v in secret_values and k not in secret_values.values()
        }
        added = {k: v for k, v in added.items() if k not in copies}
        for key, value in added.items():
            if key in secret_values.values() or value in secret_values:
                raise ValueError(f"{program.name}: secret {key} would be written into the config")
        words = [
            f"%(ENV_{secret_values[word]})s" if word in secret_values else _escape(word)
            for word in program.command
        ]
        words = [
            sys.executable,
            "-m",
            "ops.supervision",
            "exec",
            "--tag",
            _escape(f"{var}:{program.name}"),
            *(f"--unset={key}" for key in removed),
            *(f"--copy={key}={source}" for key, source in sorted(copies.items())),
            "--",
            *words,
        ]
        sections += [
            f"[program:{program.name}]",
            # shlex.join quotes only what needs it; the %(ENV_…)s stays a single word.
            "command=" + " ".join(w if w.startswith("%(ENV_") else shlex.quote(w) for w in words),
            f"directory={_escape(str(cwd))}",
            f"priority={program.priority}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={program.retries}",
            "stopsignal=TERM",
            f"stopwaitsecs={program.stop_seconds}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_escape(str(logs / (program.name + '.log')))}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=3",
        ]
        if added:
            sections.append(
                "environment=" + ",".join(f"{k}={_quoted(v)}" for k, v in added.items())
            )
        sections.append("")
    return "\n".join(sections)


class Control:
    """supervisord's XML-RPC interface on var/supervisor.sock (what supervisorctl speaks)."""

    def __init__(self, var: Path) -> None:
        self.socket = var / "supervisor.sock"
        self._rpc: xmlrpc.client.ServerProxy | None = None

    @property
    def rpc(self) -> xmlrpc.client.ServerProxy:
        if self._rpc is None:
            transport = SupervisorTransport(None, None, f"unix://{self.socket}")
            # The host part is ignored over a unix socket.
            self._rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        return self._rpc

    def states(self) -> dict[str, dict]:
        """Each program's state as supervisord reports it (name, statename, pid, …)."""
        try:
            # xmlrpc answers are untyped: supervisord documents this one as a list of dicts.
            infos = cast(list[dict[str, Any]], self.rpc.supervisor.getAllProcessInfo())
            return {info["name"]: info for info in infos}
        except (OSError, http.client.HTTPException, xmlrpc.client.Error):
            self._rpc = None  # the transport keeps a broken connection; the next call redials
            raise


class Supervisor:
    """A supervisord in the foreground, in the launcher's process group so Ctrl-C reaches it."""

    def __init__(
        self,
        programs: list[Program],
        base: Mapping[str, str],
        secrets: Iterable[str],
        var: Path,
        cwd: Path,
    ) -> None:
        self.programs = programs
        self.base = dict(base)
        self.var = var
        self.logs = var / "log" / "run"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.conf = var / "supervisord.conf"
        self.conf.write_text(config(programs, base, secrets, var, cwd))
        self.conf.chmod(0o600)
        self.process: subprocess.Popen[bytes] | None = None
        self._control = Control(var)

    def start(self) -> None:
        (self.var / "supervisor.sock").unlink(missing_ok=True)
        self.process = subprocess.Popen([str(SUPERVISORD), "-c", str(self.conf)], env=self.base)

    def states(self) -> dict[str, dict]:
        return self._control.states()

    def wait_started(self, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                self.states()
                return True
            except (OSError, http.client.HTTPException, xmlrpc.client.Error):
                time.sleep(0.1)
        return False

    def stop(self, timeout: float = 60) -> int:
        """Stop every program, then supervisord (what its own SIGINT/SIGTERM handling does)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class LogFollower:
    """Shows new lines of the programs' log files, each after its program's name."""

    def __init__(self, folder: Path, names: Iterable[str], say: Callable[[str], None]) -> None:
        self.files = {name: folder / f"{name}.log" for name in names}
        self.say = say
        self.width = max((len(n) for n in self.files), default=8)
        # Only what this run writes: earlier runs' lines stay in the files.
        self.offsets = {
            name: (path.stat().st_size if path.exists() else 0) for name, path in self.files.items()
        }
        self.partial = dict.fromkeys(self.files, b"")
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="log-follower", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.thread.join(timeout=2)
        self.poll()

    def _run(self) -> None:
        while not self._stopping.wait(0.2):
            self.poll()

    def poll(self) -> None:
        for name, path in self.files.items():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < self.offsets[name]:  # rotated by supervisord
                self.offsets[name], self.partial[name] = 0, b""
            if size == self.offsets[name]:
                continue
            with path.open("rb") as handle:
                handle.seek(self.offsets[name])
                chunk = handle.read(size - self.offsets[name])
            self.offsets[name] += len(chunk)
            *lines, self.partial[name] = (self.partial[name] + chunk).split(b"\n")
            for line in lines:
                if name == "supervisord" and any(n in line for n in _NOISE):
                    continue
                self.say(f"{name:<{self.width}} | {_plain(name, line.decode(errors='replace'))}")


# supervisord's start-up lines that tell an operator nothing (the socket is mode 0700 in var/).
_NOISE = (
    b"RPC interface 'supervisor' initialized",
    b"without any HTTP authentication checking",
    b"Set uid to user 0",
)


def _plain(name: str, line: str) -> str:
    if name == "supervisord":
        # "2025-01-01 12:00:00,123 INFO exited: worker (…)": the terminal has its own clock.
        parts = line.split(" ", 3)
        return parts[3] if len(parts) == 4 and parts[2].isupper() else line
    return line.rstrip()


class Watch:
    """Turns supervisord's states into plain sentences and into the health record in Redis."""

    def __init__(
        self,
        say: Callable[[str], None],
        log_folder: Path,
        publish: Callable[[dict[str, str]], None],
        retries: Mapping[str, int] | None = None,
    ) -> None:
        self.say = say
        self.retries = retries or {}
        self.log_folder = log_folder
        self.publish = publish
        self.seen: dict[str, str] = {}
        self.pids: dict[str, int | None] = {}
        self.deaths: dict[str, deque[float]] = {}
        self.flapping: set[str] = set()

    def update(self, states: Mapping[str, Mapping], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for name, info in states.items():
            state, before = info["statename"], self.seen.get(name)
            pid, earlier_pid = info.get("pid"), self.pids.get(name)
            self.seen[name], self.pids[name] = state, pid
            # Polled twice a second, a restart can look like RUNNING -> STARTING, or even
            # RUNNING -> RUNNING with a new pid: what changed is that the process did.
            died_running = before == "RUNNING" and (
                state in ("STARTING", "EXITED", "BACKOFF")
                or (state == "RUNNING" and pid != earlier_pid)
            )
            died_starting = before == "STARTING" and state in ("EXITED", "BACKOFF")
            if died_running or died_starting:
                self._died(name, now, running=died_running)
            if state == before and not died_running:
                continue
            if state == "RUNNING" and name in self.deaths:
                self.say(f"{name} is back (pid {pid})")
            elif state == "FATAL":
                self.say(
                    f"{name} is DOWN and no longer restarted: it failed "
                    f"{self.retries.get(name, START_RETRIES) + 1} starts in a row. The others go on. "
                    f"See {self.log_folder / (name + '.log')}"
                )
        record = {
            n: ("FLAPPING" if n in self.flapping and s == "RUNNING" else s)
            for n, s in self.seen.items()
        }
        self.publish(record)

    def _died(self, name: str, now: float, running: bool) -> None:
        deaths = self.deaths.setdefault(name, deque())
        deaths.append(now)
        while deaths and now - deaths[0] > FLAP_WINDOW:
            deaths.popleft()
        if running:
            self.say(f"{name} stopped unexpectedly; restarting it, the others go on")
        else:
            self.say(f"{name} died while starting; trying again after a longer pause")
        if len(deaths) >= FLAP_LIMIT and name not in self.flapping:
            self.flapping.add(name)
            self.say(
                f"{name} keeps dying: {len(deaths)} times in {FLAP_WINDOW / 60:.0f} min; "
                f"still restarting it. See {self.log_folder / (name + '.log')}"
            )

    @staticmethod
    def down(record: Mapping[str, str]) -> list[str]:
        """The processes a health check should name as down."""
        return sorted(n for n, s in record.items() if s in DOWN_STATES)


TAG = "HOTLINE_SUPERVISED"


def leftovers(tag: str) -> list[int]:
    """Processes still carrying `tag`: what a killed program started and left behind."""
    marker = f"{TAG}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def exec_program(argv: list[str]) -> None:
    """`python -m ops.supervision exec --tag T [--unset NAME …] -- COMMAND …`.

    Each program starts through this: it ends whatever the program's previous run left behind
    (the action server's Sanic workers outlive a SIGKILLed parent and keep its port), marks
    the new run so its own leftovers can be found, drops the secrets it must not hold, and
    sets a secret it holds under another name (--copy REDIS_PASSWORD=REDIS_PASSWORD_WORKER:
    each process's own Redis password, never written into the config), and becomes COMMAND
    (same pid). systemd gets the same from a unit's cgroup.
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m ops.supervision exec")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--unset", action="append", default=[])
    parser.add_argument("--copy", action="append", default=[], metavar="NAME=FROM")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    deadline = time.monotonic() + 5
    while (stale := leftovers(args.tag)) and time.monotonic() < deadline:
        for pid in stale:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    env = {k: v for k, v in os.environ.items() if k not in set(args.unset)}
    for pair in args.copy:
        name, _, source = pair.partition("=")
        env[name] = os.environ[source]
    env[TAG] = args.tag
    os.execvpe(command[0], command, env)


if __name__ == "__main__" and sys.argv[1:2] == ["exec"]:
    exec_program(sys.argv[2:])
