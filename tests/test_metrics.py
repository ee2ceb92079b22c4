"""/metrics on the console and the NLG endpoint, after real activity, against the real test Redis.

The console's is open (Prometheus signs in nowhere), so it must hold counts and ages only:
no case id, no counsellor's name, no number, nothing a person wrote.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from actions import nlg
from hotline import conversations, ids, metrics
from hotline.settings import Settings
from referral import accounts, queue, rota
from referral.console.deps import settings_dep
from referral.console.main import create_app
from referral.queue import Referrals
from tests.conftest import FERNET_KEY

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
NUMBER = "+258841230001"
DISCLOSURE = "They took my passport and I am not free to leave the farm"
PASSWORD = "a long test password"


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def console(db: redis.Redis, settings: Settings) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[settings_dep] = lambda: settings
    with TestClient(app) as client:
        yield client


def open_case(db: redis.Redis, n: int, risk_level: str, opened_ago: float) -> str:
    """A case as the action server opens it, `opened_ago` seconds ago."""
    cid = f"c{n:031d}"
    conversations.remember(
        db, cid, channel="sms", sealed_address=ids.seal(f"{NUMBER[:-1]}{n}", FERNET_KEY)
    )
    referrals = Referrals(db, clock=lambda: time.time() - opened_ago)
    return referrals.open_case(
        cid,
        priority="emergency" if risk_level == "emergency" else "high",
        channel="sms",
        language="en",
        risk_level=risk_level,
        summary="passport taken; not free to leave",
        consent="given",
        trigger="report_exploitation",
        transcript=[(time.time() - opened_ago, "person", DISCLOSURE)],
    ).case_id


def test_the_console_metrics_show_the_queue_by_risk_level_to_anyone_and_nothing_personal(
    console: TestClient, db: redis.Redis
) -> None:
    emergency = open_case(db, 1, "emergency", opened_ago=300)
    open_case(db, 2, "high", opened_ago=120)
    claimed = open_case(db, 3, "high", opened_ago=60)
    accounts.add(db, "ana", "counsellor", PASSWORD)
    Referrals(db).claim(claimed, "ana")
    rota.heartbeat(db, "ana")
    # A counsellor's page, asked for without signing in: refused, and counted by its template.
    assert console.get(f"/cases/{emergency}", follow_redirects=False).status_code == 303

    response = console.get("/metrics")  # no session, no cookie

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"  # the console's headers still apply
    samples = parse(response.text)
    assert value(samples, "hotline_state_up", part="referral") == 1
    assert value(samples, "hotline_cases_open", status="waiting", risk_level="emergency") == 1
    assert value(samples, "hotline_cases_open", status="waiting", risk_level="high") == 1
    assert value(samples, "hotline_cases_open", status="claimed", risk_level="high") == 1
    assert value(samples, "hotline_cases_open", status="waiting", risk_level="none") == 0
    emergency_wait = value(samples, "hotline_case_longest_wait_seconds", risk_level="emergency")
    assert emergency_wait is not None and 299 <= emergency_wait < 330
    high_wait = value(samples, "hotline_case_longest_wait_seconds", risk_level="high")
    assert high_wait is not None and 119 <= high_wait < 150  # the claimed one no longer waits
    assert value(samples, "hotline_case_longest_wait_seconds", risk_level="elevated") == 0
    assert value(samples, "hotline_counsellors_present") == 1
    refused = {"service": "console", "route": "/cases/{case_id}", "method": "GET"}
    assert (value(samples, "hotline_http_requests_total", **refused, status="303") or 0) >= 1

    # Counts only: no case id, no name, no number, no conversation id, no words of anyone's.
    text = response.text
    assert not re.search(r"\bR\d+\b", text)
    for personal in ("ana", NUMBER, NUMBER[1:], NUMBER[-9:-1], "c" + "0" * 30, "passport"):
        assert personal not in text, personal


def test_the_console_metrics_answer_while_redis_is_away(settings_factory) -> None:
    from ops import processes

    app = create_app()
    away = settings_factory(REDIS_URL=f"redis://127.0.0.1:{processes.free_port()}/0")
    app.dependency_overrides[settings_dep] = lambda: away
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    samples = parse(response.text)
    assert value(samples, "hotline_state_up", part="referral") == 0
    assert value(samples, "hotline_counsellors_present") is None


def test_the_nlg_metrics_count_rasas_requests_without_the_words() -> None:
    client = TestClient(nlg.create_app())
    asked = {"response": "utter_greet", "tracker": {"slots": {"language": "en"}}}
    before = parse(client.get("/metrics").text)
    route = {"service": "nlg", "route": "/nlg", "method": "POST"}

    answer = client.post("/nlg", json=asked)
    assert answer.status_code == 200
    missing = client.post("/nlg", json={"response": "utter_no_such_thing", "tracker": {}})
    assert missing.status_code == 404

    response = client.get("/metrics")
    assert response.status_code == 200
    after = parse(response.text)
    for status in ("200", "404"):
        was = value(before, "hotline_http_requests_total", **route, status=status) or 0
        assert value(after, "hotline_http_requests_total", **route, status=status) == was + 1
    assert (value(after, "hotline_http_request_duration_seconds_count", **route) or 0) >= 2
    assert answer.json()["text"] not in response.text
    assert "utter_" not in response.text
    # The NLG reads no Redis: it exports no state, so nothing is counted twice across services.
    assert "hotline_state_up" not in response.text


def test_the_metrics_read_the_queue_as_the_queue_writes_it() -> None:
    """hotline/metrics.py sits below referral/, so it keeps its own copy of these."""
    assert metrics.PRIORITIES == queue.PRIORITIES
    assert metrics.RISK_LEVELS == queue.RISK_LEVELS


def test_a_worker_or_sender_serves_its_own_metrics_on_a_loopback_port() -> None:
    """The objects the worker and the sender record into, served by `metrics.serve`."""
    import httpx

    from ops import processes

    port = processes.free_port()
    metrics.serve(port)
    metrics.RASA_CALL_SECONDS.labels("ok").observe(0.3)
    metrics.INBOUND_HANDLED.labels("bot").inc()
    metrics.OUTBOUND_SENT.labels("accepted").inc()

    samples = parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    assert (value(samples, "hotline_rasa_call_seconds_count", outcome="ok") or 0) >= 1
    assert (value(samples, "hotline_inbound_handled_total", answered_by="bot") or 0) >= 1
    assert (value(samples, "hotline_outbound_sent_total", status="accepted") or 0) >= 1
