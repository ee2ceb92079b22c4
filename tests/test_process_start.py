"""Each service checks its own secrets as it starts (Settings.require), however it is started:
by the launcher, by systemd, or by hand with nothing set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hotline.settings import PROJECT_ROOT
from ops import processes

COMMANDS = {
    "gateway": ["-m", "uvicorn", "--port", "0", "channels.gateway:app"],
    "worker": ["-m", "channels.worker"],
    "sender": ["-m", "channels.sender"],
    "housekeeping": ["-m", "referral.housekeeping"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_service_started_by_hand_without_its_secrets_refuses_to_run(name: str) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in processes.SECRETS and not k.startswith(("HOTLINE_", "REDIS_", "TWILIO_"))
    }
    env |= {
        "HOTLINE_ENV": "dev",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    started = subprocess.run(
        [sys.executable, *COMMANDS[name]],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert f"the {name} process refuses to start" in started.stderr, started.stderr[-2000:]
