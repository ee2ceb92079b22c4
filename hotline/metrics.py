"""Prometheus metrics: what each process counts, and the hotline's state read from Redis per scrape.

Three kinds, all counts, times and levels, never a phone number, a text, a conversation or a
case id, a counsellor's name (label values come from fixed sets, or are Twilio's digits):

- Per process, in the default registry: HTTP requests per route (`MetricsMiddleware`), and the
  metric objects below for the worker, the router and the sender to record into (each of
  those processes serves them with `serve(port)`; the web services through their /metrics).
- The pipeline's state (`PipelineState`, on the gateway's /metrics): the inbound and outbound
  streams' lag, pending entries and oldest unfinished entry, the dead letters, the undelivered
  replies by Twilio error code.
- The referral queue's state (`ReferralState`, on the console's /metrics): open cases and the
  longest wait by risk level, counsellors present.

The state is read at scrape time rather than kept in counters, so it is right whichever
replica answers and after any restart; each part is exported by one service only (the one
that fronts it), so a sum over services never counts it twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import anyio
import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline import keys

log = logging.getLogger(__name__)

PATH = "/metrics"

# The queue's own tuples live in referral.queue, above the core; tests/test_metrics.py holds
# these equal to them.
PRIORITIES = ("emergency", "high", "request")
RISK_LEVELS = ("none", "elevated", "high", "emergency")
# How far back undelivered replies are counted by error code: a day shows a carrier's bad
# night, and bounds the records read per scrape (the sorted set itself is never trimmed).
UNDELIVERED_WINDOW = 24 * 3600

# ---------------------------------------------------------------- HTTP, every web service

# Up to the NLG's and the webhook's few milliseconds, and the console's slowest pages.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "hotline_http_requests",
    "HTTP requests answered, by service, route template, method and status code",
    ("service", "route", "method", "status"),
)
HTTP_SECONDS = Histogram(
    "hotline_http_request_duration_seconds",
    "Time to answer an HTTP request, by service, route template and method "
    "(the console's /events is a long-lived stream: read its count, not its time)",
    ("service", "route", "method"),
    buckets=HTTP_BUCKETS,
)

# ---------------------------------------------------------------- for the worker and the router
# Rasa 3.6 has no Prometheus endpoint: its latency is what the worker measures around each
# call. The objects have labels, so a process that never records them exports nothing of them.

# The answers a message gets, as the router decides them (label `answered_by`).
ANSWERED_BY = ("bot", "case", "keyword", "opted_out", "erasure", "language", "media")
# How a Rasa call ended (label `outcome`).
RASA_OUTCOMES = ("ok", "timeout", "error")
# Why a message was not answered this time (label `reason`): it stays pending, or is dead-lettered.
INBOUND_FAILURES = ("rasa_timeout", "rasa_down", "error", "dead_letter")

RASA_CALL_SECONDS = Histogram(
    "hotline_rasa_call_seconds",
    "Time of one call to Rasa's REST channel from a worker, by outcome (ok, timeout, error)",
    ("outcome",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0),
)
INBOUND_HANDLED = Counter(
    "hotline_inbound_handled",
    "Inbound messages answered (acknowledged in the stream), by who answered them "
    "(bot, case, keyword, opted_out, erasure, language, media)",
    ("answered_by",),
)
INBOUND_WAIT_SECONDS = Histogram(
    "hotline_inbound_wait_seconds",
    "From the gateway taking a message to the worker answering it, by who answered",
    ("answered_by",),
    buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)
INBOUND_NOT_ANSWERED = Counter(
    "hotline_inbound_not_answered",
    "Inbound messages left for a retry or moved to the dead letters, by reason "
    "(rasa_timeout, rasa_down, error, dead_letter)",
    ("reason",),
)

# ---------------------------------------------------------------- for the sender

# How an outbound run ended (label `status`): Twilio took it, refused it (error code in the
# delivery record), it was not sent (opted out, no address), or it went to the dead letters.
OUTBOUND_STATUSES = ("accepted", "rejected", "not_sent", "dead_letter", "retry")

OUTBOUND_SENT = Counter(
    "hotline_outbound_sent",
    "What became of outgoing messages at the sender: bodies Twilio accepted or rejected, "
    "replies not sent or moved to the dead letters, and retries while Twilio was away "
    "(accepted, rejected, not_sent, dead_letter, retry)",
    ("status",),
)
TWILIO_SEND_SECONDS = Histogram(
    "hotline_twilio_send_seconds",
    "Time of one messages.create call to Twilio, by outcome (ok, refused, error)",
    ("outcome",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)


def serve(port: int, address: str = "127.0.0.1") -> None:
    """Serve this process's metrics on a loopback port (the worker and the sender have no
    web server of their own); Prometheus on the host scrapes it."""
    start_http_server(port, addr=address)


# ---------------------------------------------------------------- for the action server
# rasa-sdk has no metrics of its own: actions.server times each call its executor runs.

ACTION_SECONDS = Histogram(
    "hotline_action_seconds",
    "Time to run one custom action for Rasa, by action name and outcome (ok, error); "
    "an unknown name counts as unknown",
    ("action", "outcome"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


# ---------------------------------------------------------------- for housekeeping
# Retention is a promise to the people who wrote (their data goes after N days): an operator
# alerts when the last good purge is older than two rounds, not only when the process died.

PURGE_OUTCOMES = ("ok", "redis_error")

PURGE_ROUNDS = Counter(
    "hotline_purge_rounds",
    "Retention purges tried by housekeeping, by outcome (ok, redis_error)",
    ("outcome",),
)
PURGE_CASES = Counter(
    "hotline_purge_cases_anonymised",
    "Closed cases past the retention period whose transcript and contact were erased",
)
PURGE_LAST_OK = Gauge(
    "hotline_purge_last_ok_timestamp_seconds",
    "When the last retention purge finished (Unix time; 0 until the first one)",
)
PURGE_SECONDS = Histogram(
    "hotline_purge_seconds",
    "Time of one retention purge",
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)


# ---------------------------------------------------------------- the state in Redis


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class _State(Collector):
    """A collector that reads Redis at each scrape; a Redis that does not answer is a 0 in
    hotline_state_up, not a failed scrape (the process's own metrics still come through)."""

    part = ""

    def __init__(self, db: redis.Redis) -> None:
        self.db = db

    def read(self) -> Iterator[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        up = _gauge(
            "hotline_state_up", "1 when the state in Redis could be read for this scrape", ["part"]
        )
        try:
            families = list(self.read())
        except redis.RedisError as error:
            log.warning("metrics: the %s state was not read (%s)", self.part, type(error).__name__)
            families = []
            up.add_metric([self.part], 0)
        else:
            up.add_metric([self.part], 1)
        yield up
        yield from families

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read at scrape time only, never at registration


def _id_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


class PipelineState(_State):
    """The inbound and outbound streams, the dead letters and the undelivered replies."""

    part = "pipeline"
    STREAMS = ((keys.INBOUND.name, keys.INBOUND_STREAM), (keys.OUTBOUND.name, keys.OUTBOUND_STREAM))

    def read(self) -> Iterator[Metric]:
        seconds, micros = self.db.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        length = _gauge("hotline_stream_length", "Entries in the stream", ["stream"])
        lag = _gauge(
            "hotline_stream_lag",
            "Entries of the stream not yet read by the group (a backlog)",
            ["stream", "group"],
        )
        pending = _gauge(
            "hotline_stream_pending",
            "Entries read by a consumer of the group and not yet acknowledged",
            ["stream", "group"],
        )
        oldest = _gauge(
            "hotline_stream_oldest_seconds",
            "Age of the oldest entry the group has not finished (pending or not yet read); "
            "0 when none",
            ["stream", "group"],
        )
        consumers = _gauge(
            "hotline_stream_consumers", "Consumers known to the group", ["stream", "group"]
        )
        for name, key in self.STREAMS:
            size = self.db.xlen(key)
            length.add_metric([name], size)
            groups = self.db.xinfo_groups(key) if self.db.exists(key) else []
            for group in groups:
                labels = [name, str(group["name"])]
                unread = group.get("lag")
                if unread is None:
                    # Redis cannot tell after some deletions; entries are deleted once
                    # answered, so what is left past the pending ones is the backlog.
                    unread = max(size - int(group["pending"]), 0)
                lag.add_metric(labels, int(unread))
                pending.add_metric(labels, int(group["pending"]))
                consumers.add_metric(labels, int(group["consumers"]))
                oldest.add_metric(labels, self._oldest_age(key, group, now_ms))
        yield from (length, lag, pending, oldest, consumers)

        dead = _gauge(
            "hotline_dead_letters", "Entries in the dead letters, waiting for `hotline dlq`"
        )
        dead.add_metric([], self.db.xlen(keys.DEAD_LETTER_STREAM))
        yield dead

        yield from self._undelivered()

    def _oldest_age(self, key: str, group: dict[str, Any], now_ms: int) -> float:
        starts: list[int] = []
        if int(group["pending"]):
            summary = self.db.xpending(key, group["name"])
            if summary.get("min"):
                starts.append(_id_ms(summary["min"]))
        after = self.db.xrange(key, "(" + str(group["last-delivered-id"]), "+", count=1)
        if after:
            starts.append(_id_ms(after[0][0]))
        return max(now_ms - min(starts), 0) / 1000 if starts else 0.0

    def _undelivered(self) -> Iterator[Metric]:
        since = time.time() - UNDELIVERED_WINDOW
        record_ids = self.db.zrangebyscore(keys.UNDELIVERED_KEY, since, "+inf")
        with self.db.pipeline(transaction=False) as pipe:
            for record_id in record_ids:
                pipe.hget(keys.delivery(record_id), "error_code")
            codes = pipe.execute()
        by_code: dict[str, int] = {}
        for code in codes:
            # Twilio's codes are digits; anything else (a record expired, none given) is "none".
            label = code if isinstance(code, str) and code.isdigit() else "none"
            by_code[label] = by_code.get(label, 0) + 1
        undelivered = _gauge(
            "hotline_undelivered",
            f"Replies that failed (refused by Twilio, failed or undelivered) in the last "
            f"{UNDELIVERED_WINDOW // 3600} hours, by Twilio error code",
            ["code"],
        )
        for code, count in sorted(by_code.items()):
            undelivered.add_metric([code], count)
        yield undelivered
        listed = _gauge(
            "hotline_undelivered_listed", "Every reply in the undelivered list, however old"
        )
        listed.add_metric([], self.db.zcard(keys.UNDELIVERED_KEY))
        yield listed


class ReferralState(_State):
    """The referral queue: open cases and how long the waiting ones wait, counsellors present."""

    part = "referral"
    FIELDS = ("risk_level", "opened_at")

    def _cases(self, case_ids: list[str]) -> list[tuple[str, float]]:
        with self.db.pipeline(transaction=False) as pipe:
            for case_id in case_ids:
                pipe.hmget(keys.case(case_id), *self.FIELDS)
            rows = pipe.execute()
        cases = []
        for level, opened_at in rows:
            if opened_at is None and level is None:
                continue  # gone between the two reads
            # The queue ranks an unknown level as "none" too.
            cases.append((level if level in RISK_LEVELS else "none", float(opened_at or 0)))
        return cases

    def read(self) -> Iterator[Metric]:
        now = time.time()
        waiting_ids = [
            case_id
            for priority in PRIORITIES
            for case_id in self.db.zrange(keys.waiting(priority), 0, -1)
        ]
        claimed_ids = self.db.zrange(keys.CLAIMED_KEY, 0, -1)
        open_cases = _gauge(
            "hotline_cases_open",
            "Open cases by status (waiting, claimed) and risk level",
            ["status", "risk_level"],
        )
        longest = _gauge(
            "hotline_case_longest_wait_seconds",
            "How long the oldest waiting case of each risk level has waited; 0 when none waits",
            ["risk_level"],
        )
        for status, ids in (("waiting", waiting_ids), ("claimed", claimed_ids)):
            cases = self._cases(ids)
            for level in RISK_LEVELS:
                of_level = [opened for case_level, opened in cases if case_level == level]
                open_cases.add_metric([status, level], len(of_level))
                if status == "waiting":
                    wait = max(now - min(of_level), 0) if of_level else 0
                    longest.add_metric([level], wait)
        yield open_cases
        yield longest

        present = _gauge(
            "hotline_counsellors_present", "Counsellors whose console is open (its heartbeat)"
        )
        present.add_metric([], self.db.zcount(keys.PRESENCE_KEY, now, "+inf"))
        yield present


class RasaProbe(Collector):
    """Rasa seen from outside (Rasa 3.6 has no metrics of its own): whether it answered the
    gateway's probe at this scrape, and how fast. Built per scrape by `probe_rasa`."""

    def __init__(self, up: bool, seconds: float) -> None:
        self.up, self.seconds = up, seconds

    def collect(self) -> Iterator[Metric]:
        up = _gauge("hotline_rasa_up", "1 when Rasa answered the gateway's probe at this scrape")
        up.add_metric([], 1 if self.up else 0)
        took = _gauge(
            "hotline_rasa_probe_seconds", "How long Rasa took to answer the probe (GET /)"
        )
        took.add_metric([], self.seconds)
        yield from (up, took)

    def describe(self) -> Iterator[Metric]:
        return iter(())


async def probe_rasa(healthy: Callable[[], Awaitable[bool]]) -> RasaProbe:
    """Time one health call to Rasa (`RasaClient.healthy`, which gives up after 2 s)."""
    started = time.perf_counter()
    up = await healthy()
    return RasaProbe(up, time.perf_counter() - started)


# ---------------------------------------------------------------- exposition


def render(*state: Collector) -> bytes:
    """The process's own metrics, then the state collectors', in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in state:
        registry.register(collector)
    return generate_latest(REGISTRY) + (generate_latest(registry) if state else b"")


async def render_in_thread(*state: Collector) -> bytes:
    """`render` off the event loop: the state collectors use blocking Redis calls."""
    return await anyio.to_thread.run_sync(lambda: render(*state))


Exposition = Callable[[], Awaitable[bytes]]


async def _process_only() -> bytes:
    return render()


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, and answers GET /metrics itself.

    /metrics is answered here, before routing, sessions and logins: it is open by construction
    and holds counts only. The route label is the template (`/cases/{case_id}`), never the
    path, so no id reaches a label and the number of series stays fixed.
    """

    def __init__(self, app: ASGIApp, service: str, exposition: Exposition = _process_only) -> None:
        self.app = app
        self.service = service
        self.exposition = exposition

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == PATH and scope["method"] in ("GET", "HEAD"):
            await self._answer(scope, send)
            return
        status = 500  # what the client gets when the app raises before answering
        started = time.perf_counter()

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            HTTP_SECONDS.labels(self.service, route, method).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(self.service, route, method, str(status)).inc()

    async def _answer(self, scope: Scope, send: Send) -> None:
        body = await self.exposition()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
