"""The timer `make run` supervises: old cases are purged, once an hour."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
import redis
from prometheus_client import REGISTRY

from hotline.settings import PROJECT_ROOT
from ops import processes
from referral import housekeeping
from referral.queue import Referrals
from tests.conftest import FERNET_KEY, SECRET

DAY = 86400


def _closed_long_ago(db: redis.Redis, settings) -> str:
    past = time.time() - (settings.retention_days + 5) * DAY
    referrals = Referrals(db, clock=lambda: past)
    case_id = referrals.open_case(
        "c-metrics",
        priority="high",
        channel="sms",
        language="en",
        transcript=[(1.0, "person", "they took my passport")],
    ).case_id
    referrals.close(case_id, "ana", "referred_police")
    return case_id


def test_cases_closed_before_the_retention_period_are_purged_once_an_hour(
    db: redis.Redis, settings
) -> None:
    old = _closed_long_ago(db, settings)

    # Purged less than an hour ago: this round does nothing.
    recent = time.time() - 60
    assert housekeeping.tick(settings, db, last_purge=recent) == recent
    assert Referrals(db).get(old).transcript

    housekeeping.tick(settings, db, last_purge=0.0)
    case = Referrals(db).get(old)
    assert case.transcript == [] and case.outcome == "referred_police"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_purge_is_counted_and_its_time_kept_so_a_stalled_retention_alerts(
    db: redis.Redis, settings, settings_factory
) -> None:
    _closed_long_ago(db, settings)
    ok, anonymised = (
        _sample("hotline_purge_rounds_total", outcome="ok"),
        _sample("hotline_purge_cases_anonymised_total"),
    )
    started = time.time()
    housekeeping.tick(settings, db, last_purge=0.0)
    assert _sample("hotline_purge_rounds_total", outcome="ok") == ok + 1
    assert _sample("hotline_purge_cases_anonymised_total") == anonymised + 1
    last_ok = _sample("hotline_purge_last_ok_timestamp_seconds")
    assert last_ok >= started

    # Redis away: the round is counted as failed and the last good purge keeps its time, so
    # `time() - hotline_purge_last_ok_timestamp_seconds` grows and the alert fires.
    failed = _sample("hotline_purge_rounds_total", outcome="redis_error")
    away = settings_factory(REDIS_URL=f"redis://127.0.0.1:{processes.free_port()}/0")
    with pytest.raises(redis.RedisError):
        housekeeping.tick(away, redis.Redis.from_url(away.redis_url), last_purge=0.0)
    assert _sample("hotline_purge_rounds_total", outcome="redis_error") == failed + 1
    assert _sample("hotline_purge_last_ok_timestamp_seconds") == last_ok


def test_the_housekeeping_process_serves_its_figures_on_its_metrics_port(
    redis_server, db: redis.Redis, settings
) -> None:
    _closed_long_ago(db, settings)
    port = processes.free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "REDIS_"))},
        "HOTLINE_ENV": "test",
        "REDIS_URL": redis_server.url,
        "HOTLINE_SECRET": SECRET,
        "HOTLINE_FERNET_KEY": FERNET_KEY,
        "RASA_TOKEN": "test-rasa-token",
        "HOTLINE_HOUSEKEEPING_METRICS_PORT": str(port),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "referral.housekeeping"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, text = time.monotonic() + 20, ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                text = ""
            if 'hotline_purge_rounds_total{outcome="ok"} 1.0' in text:
                break
            time.sleep(0.2)
        assert 'hotline_purge_rounds_total{outcome="ok"} 1.0' in text
        assert "hotline_purge_cases_anonymised_total 1.0" in text
        assert "they took my passport" not in text
    finally:
        process.terminate()
        process.wait(timeout=10)
