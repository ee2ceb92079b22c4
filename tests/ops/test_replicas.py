"""Past one machine, under load and under fire (ops/replicas.py, docs/operations.md).

Two gateways and two Rasa servers behind HAProxy, three workers in one consumer group, Redis
as a primary and a replica under three Sentinels, every client following the primary through
HAProxy's tcp-check. People text the sandbox phone at a person's pace while one gateway, one
worker and one Rasa server are killed with SIGKILL, and then the Redis primary, 0.4 s after
its replica's link was cut (as a network fault would), so that a write acknowledged without
waiting for the replica is lost for good.

Webhooks are retried as Twilio retries them when told to (connection overrides: same
MessageSid and idempotency token, 15 s at most in all). After the faults every message is
answered exactly once and in order, none lost, no user turn twice in Rasa's trackers, nothing
dead-lettered or left in the streams. The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from channels import keywords
from hotline import keys
from hotline.ids import conversation_id
from hotline.settings import PROJECT_ROOT
from ops import processes
from ops.replicas import Topology
from tests.channels.conftest import Phone, Servers, wait_for
from tests.channels.test_faults import all_answered, parts
from tests.channels.test_sender_crash import _all_sent
from tests.conftest import AUTH_TOKEN, FERNET_KEY, SECRET

# Rasa twice and the whole layout, for minutes: the fast lane leaves it to make test.
pytestmark = pytest.mark.needs_model

NOTES = keywords.load(PROJECT_ROOT / "data" / "keywords.yml")
CONVERSATIONS = 24
SAID = {
    "en": [
        "hello",
        "i want to go back home how can u help me",
        "what documents do i need to travel home",
        "how does the return process work",
        "thank you",
    ],
    "pt": [
        "olá",
        "quero voltar para Moçambique, como faço?",
        "que documentos preciso para viajar?",
        "como funciona o processo de regresso?",
        "obrigado",
    ],
}
PACE = (5.0, 8.0)  # seconds between one person's messages
# Twilio's connection overrides allow at most 15 s over all retries of one webhook (tt).
TWILIO_RETRIES_FOR = 15.0
# When each fault strikes, in seconds after the load starts.
FAULTS = {"gateway": 8.0, "worker": 14.0, "rasa": 20.0, "redis": 26.0}
# Rasa's ticket lock outlives a Rasa killed mid-turn (60 s by default): its conversation
# waits for it. Shorter here for the time budget, still well above a turn's time.
RASA_LOCK_LIFETIME = "20"


@dataclass
class Sent:
    phone: Phone
    body: str
    sid: str
    first_try: float
    accepted: float | None = None
    attempts: int = 0


@dataclass
class Ledger:
    sent: list[Sent] = field(default_factory=list)
    refusals: list[tuple[float, str]] = field(default_factory=list)  # (when, why)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post_like_twilio(self, phone: Phone, body: str) -> None:
        form = phone.form(body)
        sent = Sent(phone, body, form["MessageSid"], time.time())
        with self.lock:
            self.sent.append(sent)
        token = "idem-" + form["MessageSid"]
        while time.time() - sent.first_try < TWILIO_RETRIES_FOR:
            sent.attempts += 1
            try:
                status = phone.post(form, token=token).status_code
            except httpx.HTTPError as error:
                status, why = 0, type(error).__name__
            else:
                why = f"HTTP {status}"
            if status == 200:
                sent.accepted = time.time()
                return
            with self.lock:
                self.refusals.append((time.time(), why))
            time.sleep(0.3)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if not processes.MODEL.exists():
        pytest.fail("no trained model at models/hotline.tar.gz: run the tests through `make test`")
    if not Path("/usr/sbin/haproxy").exists():
        pytest.fail("haproxy is not installed: `make deploy-tools` installs it")
    # A short path: nothing here needs a long one, and logs are easier to find.
    folder = tmp_path_factory.mktemp("replicas")
    layout = Topology(
        folder,
        # The suite's own secrets, so its phones sign webhooks and name conversations.
        secrets={
            "HOTLINE_SECRET": SECRET,
            "HOTLINE_FERNET_KEY": FERNET_KEY,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        },
        extra_env={"HOTLINE_CLAIM_IDLE": "10", "LOG_LEVEL": "INFO"},
        rasa_env={"TICKET_LOCK_LIFETIME": RASA_LOCK_LIFETIME},
        ack_replicas=int(os.environ.get("HOTLINE_TEST_ACK_REPLICAS", "1")),
    )
    try:
        layout.start()
        yield layout
    finally:
        layout.stop()


def thread_out(servers: Servers, phone: Phone) -> list[tuple[str, float]]:
    """Each body the sandbox delivered to the phone, with when Twilio took it."""
    messages = httpx.post(
        servers.sandbox_url + "/phone/thread",
        json={"channel": phone.channel, "number": phone.number},
        timeout=10,
    ).json()["messages"]
    return [(m["body"], float(m["at"])) for m in messages if m["direction"] == "out"]


def turns(topology: Topology, phone: Phone) -> list[tuple[str, str, list[str]]]:
    """(MessageSid, text, the bot's parts) for every user turn in Rasa's tracker."""
    token = topology.settings.rasa_token.get_secret_value()
    cid = conversation_id(phone.address, SECRET)
    response = httpx.get(
        f"{topology.rasa_url}/conversations/{cid}/tracker", params={"token": token}, timeout=60
    )
    response.raise_for_status()
    found: list[tuple[str, str, list[str]]] = []
    for event in response.json()["events"]:
        if event["event"] == "user":
            found.append((event["metadata"].get("message_sid", ""), event["text"], []))
        elif event["event"] == "bot" and event.get("text") and found:
            found[-1][2].extend(event["text"].split("\n\n"))
    return found


class FailoverProbe:
    """From the primary's death: when writes are served again through HAProxy, when the
    Sentinels name the new primary, and when a write is confirmed on a replica again."""

    def __init__(self, topology: Topology, killed_port: int, since: float) -> None:
        self.topology, self.killed, self.since = topology, killed_port, since
        self.writes: float | None = None
        self.promoted: float | None = None
        self.replicated: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        db = self.topology.db(socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.time() + 60
        while time.time() < deadline and self.replicated is None:
            if self.promoted is None and self.topology.primary_port() not in (None, self.killed):
                self.promoted = time.time() - self.since
            try:
                with db.pipeline(transaction=False) as pipe:
                    pipe.set("replicas:probe", "1")
                    pipe.wait(1, 200)
                    _, confirmed = pipe.execute()
                if self.writes is None:
                    self.writes = time.time() - self.since
                if confirmed >= 1:
                    self.replicated = time.time() - self.since
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.05)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def test_replicas_killed_under_load_lose_nothing_and_answer_nothing_twice(
    topology: Topology,
) -> None:
    servers = Servers(topology.settings, topology.public_url, topology.sandbox_url)
    phones = [
        Phone(servers, f"+2588411{index:05d}", "whatsapp" if index % 2 else "sms")
        for index in range(CONVERSATIONS)
    ]
    languages = {phone.number: ("en", "pt")[index % 2] for index, phone in enumerate(phones)}
    ledger = Ledger()
    chance = random.Random(20250)
    plans = {
        phone.number: (chance.uniform(0, PACE[1]), [chance.uniform(*PACE) for _ in range(5)])
        for phone in phones
    }

    def person(phone: Phone) -> None:
        start, gaps = plans[phone.number]
        time.sleep(start)
        for text, gap in zip(SAID[languages[phone.number]], gaps, strict=True):
            ledger.post_like_twilio(phone, text)
            time.sleep(gap)

    db = topology.db(socket_timeout=2, socket_connect_timeout=1)
    started = time.time()
    people = [threading.Thread(target=person, args=(p,), daemon=True) for p in phones]
    for thread in people:
        thread.start()

    struck: dict[str, float] = {}

    def at(name: str) -> None:
        time.sleep(max(0.0, started + FAULTS[name] - time.time()))
        struck[name] = time.time()

    at("gateway")
    topology.processes["gateway1"].kill()
    at("worker")
    # The worker with messages in hand, if one has any within 3 s: its death is the fault.
    workers = {
        f"{socket.gethostname()}-{p.pid}": p
        for name, p in topology.processes.items()
        if name.startswith("worker")
    }
    consumer = next(iter(workers))
    until = time.time() + 3
    while time.time() < until:
        busy = [
            c["name"]
            for c in db.xpending(keys.INBOUND_STREAM, "workers")["consumers"]
            if c["name"] in workers and int(c["pending"]) > 0
        ]
        if busy:
            consumer = busy[0]
            break
        time.sleep(0.05)
    worker = workers[consumer]
    worker.kill()
    held = [
        item["message_id"]
        for item in db.xpending_range(keys.INBOUND_STREAM, "workers", "-", "+", 100, consumer)
    ]
    at("rasa")
    topology.processes["rasa1"].kill()
    at("redis")
    # The replica falls behind (its link cut, as a network fault would), and the primary
    # dies before it has caught up: what was acknowledged meanwhile is on the primary alone.
    primary = topology.primary_port()
    assert primary is not None
    topology.db(primary, socket_timeout=1).client_kill_filter(_type="replica")
    time.sleep(0.4)
    killed = topology.kill_primary()
    struck["redis"] = time.time()
    probe = FailoverProbe(topology, killed.port, struck["redis"])
    topology.restart_redis(killed)  # the supervisor's part: back as a replica of the new one
    for thread in people:
        thread.join(timeout=120)
    probe.thread.join(timeout=60)

    assert wait_for(lambda: all_answered(db, phones), timeout=120), [
        p.output() for name, p in topology.processes.items() if name.startswith("worker")
    ]
    assert wait_for(lambda: _all_sent(db), timeout=60), topology.processes["sender"].output()

    # ------------------------------------------------------------ exactly once, in order
    notes = {NOTES.note("received_will_answer", language) for language in ("pt", "en", "fr", "sw")}
    by_sid = {sent.sid: sent for sent in ledger.sent}
    refused = [sent for sent in ledger.sent if sent.accepted is None]
    lost_turns = duplicated_turns = lost_replies = duplicated_replies = 0
    replied_at: dict[str, float] = {}
    problems = []
    for phone in phones:
        mine = [sent for sent in ledger.sent if sent.phone is phone]
        seen = turns(topology, phone)
        sids = [sid for sid, _, _ in seen]
        lost_turns += len({s.sid for s in mine} - set(sids))
        duplicated_turns += len(sids) - len(set(sids))
        if [text for _, text, _ in seen] != [s.body for s in mine]:
            problems.append(f"{phone.number[-3:]}: turns {[t for _, t, _ in seen]}")
        expected = [part for _, _, said in seen for part in said]
        bodies = thread_out(servers, phone)
        received = [
            (part, when)
            for body, when in bodies
            for part in body.split("\n\n")
            if part not in notes
        ]
        got = [part for part, _ in received]
        lost_replies += sum((Counter(expected) - Counter(got)).values())
        duplicated_replies += sum((Counter(got) - Counter(expected)).values())
        if got != expected:
            problems.append(f"{phone.number[-3:]}: got {got} expected {expected}")
        assert [p for p in parts(phone) if p not in notes] == got
        position = 0
        for sid, _, said in seen:
            if said and position < len(received):
                replied_at[sid] = received[position][1]
            position += len(said)

    dead = db.xlen(keys.DEAD_LETTER_STREAM)
    left = db.xlen(keys.INBOUND_STREAM)
    open_cases = sum(1 for _ in db.scan_iter(keys.OPEN_CASE.glob()))
    failures = db.hlen(keys.INBOUND_FAILURES_KEY)

    # ------------------------------------------------------------ figures
    latency = {sid: replied_at[sid] - by_sid[sid].first_try for sid in replied_at}
    window = (struck["gateway"], struck["redis"] + 15)
    during = [v for sid, v in latency.items() if window[0] <= by_sid[sid].first_try <= window[1]]

    def recovery(when: float) -> float:
        caught = [
            replied_at[s.sid] - when
            for s in ledger.sent
            if s.first_try < when and s.sid in replied_at and replied_at[s.sid] > when
        ]
        return max(caught, default=0.0)

    after_gateway = [w for w, _ in ledger.refusals if struck["gateway"] <= w < struck["worker"]]
    after_redis = [w for w, _ in ledger.refusals if struck["redis"] <= w]
    total = time.time() - started
    print(
        "\n--- past one machine: 2 gateways, 3 workers, 2 Rasa, Redis primary+replica, "
        "3 Sentinels, HAProxy ---\n"
        f"conversations {CONVERSATIONS}, messages sent {len(ledger.sent)}, accepted "
        f"{len(ledger.sent) - len(refused)}, answered {len(replied_at)}, "
        f"lost {len(refused) + lost_turns + lost_replies} (refused {len(refused)}, turns "
        f"{lost_turns}, replies {lost_replies}), duplicated {duplicated_turns + duplicated_replies} "
        f"(turns {duplicated_turns}, replies {duplicated_replies})\n"
        f"webhook attempts refused and retried: {len(ledger.refusals)} "
        f"({len(after_gateway)} after the gateway kill, {len(after_redis)} after the Redis kill)\n"
        f"gateway killed: messages in flight answered within {recovery(struck['gateway']):.1f} s\n"
        f"worker killed holding {len(held)} entries: in-flight messages answered within "
        f"{recovery(struck['worker']):.1f} s\n"
        f"rasa killed: in-flight messages answered within {recovery(struck['rasa']):.1f} s "
        f"(Rasa's ticket lock lifetime {RASA_LOCK_LIFETIME} s)\n"
        f"redis primary killed (replica link cut 0.4 s before): writes served again after "
        f"{probe.writes or float('nan'):.2f} s, Sentinels named the new primary after "
        f"{probe.promoted or float('nan'):.2f} s, writes confirmed on a replica again after "
        f"{probe.replicated or float('nan'):.2f} s; in-flight messages answered within "
        f"{recovery(struck['redis']):.1f} s\n"
        f"reply latency (first try to reply at Twilio): all p50 "
        f"{statistics.median(latency.values()):.2f} s p95 "
        f"{percentile(list(latency.values()), 0.95):.2f} s; during the faults "
        f"({len(during)} messages) p50 {percentile(during, 0.5):.2f} s p95 "
        f"{percentile(during, 0.95):.2f} s\n"
        f"dead letters {dead}, inbound left {left}, open cases {open_cases}, "
        f"failure counts left {failures}; {total:.0f} s of load and recovery"
    )
    assert not refused, f"{len(refused)} webhooks never accepted within Twilio's retries"
    assert not problems, problems[:5]
    assert lost_turns == duplicated_turns == lost_replies == duplicated_replies == 0
    assert dead == left == open_cases == failures == 0
    assert probe.writes is not None and probe.replicated is not None
