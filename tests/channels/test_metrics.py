"""The gateway's /metrics: what an operator's Prometheus reads of the pipeline after real traffic.

Real gateway, worker, sender and sandbox (tests/channels/conftest.py); the figures must move
with what the phone did, and the output must never carry the number, the text or an id.
"""

from __future__ import annotations

import time

import httpx
import redis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from channels import gateway
from hotline import conversations, ids, keys
from hotline.ids import conversation_id
from ops import processes
from tests.channels.conftest import (
    BOT_REPLY,
    FakeRasa,
    Phone,
    Servers,
    ServerThread,
    run_sender,
    run_worker,
    wait_for,
)
from tests.conftest import FERNET_KEY, SECRET

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[str, Samples]:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def requests_counted(samples: Samples, route: str, status: str) -> float:
    labels = {"service": "gateway", "route": route, "method": "POST", "status": status}
    return value(samples, "hotline_http_requests_total", **labels) or 0.0


def assert_nothing_personal(text: str, phone: Phone, *words: str) -> None:
    """No number (in any form), no text, no conversation id, no message id."""
    for secret in (
        phone.number,
        phone.number.lstrip("+"),
        phone.number[-9:],
        conversation_id(phone.address, SECRET),
        *words,
    ):
        assert secret not in text, f"{secret!r} is in /metrics"


def test_a_message_through_the_pipeline_shows_in_the_gateways_metrics(
    servers: Servers, db: redis.Redis
) -> None:
    phone = Phone(servers, "+258840000931")
    # The phone is switched off: Twilio takes the reply, the carrier reports 30003.
    httpx.post(
        f"{servers.sandbox_url}/sandbox/unreachable", json={"number": phone.number}, timeout=10
    )
    _, before = scrape(servers.gateway_url)

    text = "They took my passport and I cannot leave the farm"
    sid = "SM" + "931" * 10 + "00"
    assert phone.post(phone.form(text, sid=sid)).status_code == 200
    _, queued = scrape(servers.gateway_url)
    assert value(queued, "hotline_stream_length", stream="inbound") == 1
    assert value(queued, "hotline_state_up", part="pipeline") == 1

    run_worker(servers.settings, FakeRasa())
    run_sender(servers.settings)
    wait_for(lambda: db.zcard(keys.UNDELIVERED_KEY) == 1, timeout=10)
    output, after = scrape(servers.gateway_url)

    # The webhook and the status callbacks are counted by route template and status.
    assert requests_counted(after, "/twilio/messages", "200") == (
        requests_counted(before, "/twilio/messages", "200") + 1
    )
    assert requests_counted(after, "/twilio/status", "200") >= (
        requests_counted(before, "/twilio/status", "200") + 2  # sent, then undelivered
    )
    assert (
        value(
            after,
            "hotline_http_request_duration_seconds_count",
            service="gateway",
            route="/twilio/messages",
            method="POST",
        )
        or 0
    ) >= 1
    # Both streams were drained by their groups: nothing waits, nothing is pending.
    for stream, group in (("inbound", "workers"), ("outbound", "senders")):
        assert value(after, "hotline_stream_lag", stream=stream, group=group) == 0
        assert value(after, "hotline_stream_pending", stream=stream, group=group) == 0
        assert value(after, "hotline_stream_oldest_seconds", stream=stream, group=group) == 0
        assert value(after, "hotline_stream_length", stream=stream) == 0
    # The failed reply, by Twilio's error code.
    assert value(after, "hotline_undelivered", code="30003") == 1
    assert value(after, "hotline_undelivered_listed") == 1
    assert value(after, "hotline_dead_letters") == 0
    # Rasa is not running in these tests: the probe says so, and the scrape still answers.
    assert value(after, "hotline_rasa_up") == 0
    assert value(after, "hotline_rasa_probe_seconds") is not None

    assert_nothing_personal(
        output, phone, text, sid, *BOT_REPLY.values(), *db.zrange(keys.UNDELIVERED_KEY, 0, -1)
    )


def test_a_backlog_shows_its_depth_and_age(servers: Servers, db: redis.Redis) -> None:
    """Workers exist (the group does) but none reads: the operator sees how many and how old."""
    db.xgroup_create(keys.INBOUND_STREAM, "workers", id="0", mkstream=True)
    phones = [Phone(servers, f"+25884000094{n}") for n in range(3)]
    for phone in phones:
        assert phone.send("Ola, preciso de ajuda").status_code == 200
    time.sleep(1.1)

    output, samples = scrape(servers.gateway_url)
    assert value(samples, "hotline_stream_lag", stream="inbound", group="workers") == 3
    assert value(samples, "hotline_stream_pending", stream="inbound", group="workers") == 0
    assert value(samples, "hotline_stream_oldest_seconds", stream="inbound", group="workers") >= 1

    # A worker takes them: the backlog is gone.
    run_worker(servers.settings, FakeRasa())
    _, drained = scrape(servers.gateway_url)
    assert value(drained, "hotline_stream_lag", stream="inbound", group="workers") == 0
    assert value(drained, "hotline_stream_oldest_seconds", stream="inbound", group="workers") == 0
    for phone in phones:
        assert_nothing_personal(output, phone, "Ola, preciso de ajuda")


def test_a_dead_letter_is_counted(servers: Servers, db: redis.Redis) -> None:
    phone = Phone(servers, "+258840000951")
    broken = FakeRasa()
    # A 400 is the message's own problem (not Rasa away): after the failure limit it is dead.
    broken.handler = lambda request: httpx.Response(400, json={"error": "bad"})  # type: ignore[method-assign]
    assert phone.send("Where can I find a lawyer?").status_code == 200
    run_worker(servers.settings, broken, max_failures=1)

    output, samples = scrape(servers.gateway_url)
    assert value(samples, "hotline_dead_letters") == 1
    assert_nothing_personal(output, phone, "Where can I find a lawyer?")


def test_the_sender_counts_what_twilio_took_and_refused_and_times_each_call(
    servers: Servers, db: redis.Redis
) -> None:
    """The sender's own figures (served on HOTLINE_SENDER_METRICS_PORT): one reply taken, one
    refused by Twilio (21610, the number opted out), one never sent (no address)."""

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = {
        status: sample("hotline_outbound_sent_total", status=status)
        for status in ("accepted", "rejected", "not_sent")
    }
    calls = {
        outcome: sample("hotline_twilio_send_seconds_count", outcome=outcome)
        for outcome in ("ok", "refused")
    }
    for number, text in (("+258840000961", "Ola."), ("+15005550004", "Hello.")):
        address = f"{number}"
        cid = conversation_id(address, SECRET)
        conversations.remember(db, cid, channel="sms", sealed_address=ids.seal(address, FERNET_KEY))
        conversations.queue_reply(db, cid, text, source="bot")
    conversations.queue_reply(db, "c" * 32, "Nobody to send this to.", source="bot")
    run_sender(servers.settings)

    for status in ("accepted", "rejected", "not_sent"):
        assert sample("hotline_outbound_sent_total", status=status) == before[status] + 1
    for outcome in ("ok", "refused"):
        assert sample("hotline_twilio_send_seconds_count", outcome=outcome) == calls[outcome] + 1


def test_metrics_answer_while_redis_is_away(servers: Servers, settings_factory) -> None:
    """The process's own figures still come, and the state says it could not be read."""
    port = processes.free_port()
    settings = settings_factory(
        REDIS_URL=f"redis://127.0.0.1:{processes.free_port()}/0", RASA_URL="http://127.0.0.1:9"
    )
    server = ServerThread(gateway.create_app(settings), port)
    server.start()
    try:
        _, samples = scrape(server.url)
    finally:
        server.stop()
    assert value(samples, "hotline_state_up", part="pipeline") == 0
    assert value(samples, "hotline_stream_length", stream="inbound") is None
