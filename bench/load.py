"""Load benchmark: the full path (webhook → worker → Rasa → sender → sandbox) against Rasa's
own REST channel called directly with the same messages, in one invocation.

It assumes the stack is running (`make run`, dev mode: the sandbox stands in for Twilio) and
reads the same environment as the services. Phases:

1. baseline: N conversations at once, each sending its messages one after another straight
   to Rasa's REST webhook (with the metadata the worker would send);
2. full path: the same conversations and messages as signed Twilio webhooks; a message
   counts as answered when its reply reaches the sandbox (timed by the sandbox);
3. acknowledgement under load: webhooks at a fixed rate (50/s) from new conversations,
   timing the gateway's answer; then every reply is awaited.

It prints acknowledgement p50/p99, end-to-end p50/p95, messages per second and the ratios
to the baseline, checks for lost or duplicated replies, and writes JSON to bench/results/.

    python bench/load.py [--conversations 16] [--messages 4] [--rounds 3] [--rate 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels import keywords
from channels.sandbox.app import EVENTS, message_key
from channels.twilio_adapter import sign
from hotline.language import LANGUAGES as HOTLINE_LANGUAGES
from hotline.language import choose_language
from hotline.settings import Settings
from hotline.sms import join_messages
from hotline.store import login

# What people ask most, in each language; nothing here opens a case (the bot would go quiet).
SCRIPTS = {
    "pt": [
        "Olá",
        "quero voltar para Moçambique, como faço?",
        "quem pode ter ajuda para regressar?",
        "obrigado",
    ],
    "en": [
        "hello",
        "i want to go back home how can u help me",
        "who can get help to return?",
        "thanks",
    ],
    "fr": [
        "bonjour",
        "je veux rentrer chez moi, vous pouvez m'aider?",
        "qui peut avoir l'aide au retour?",
        "merci",
    ],
    "sw": [
        "habari",
        "nataka kurudi nyumbani mnaweza kunisaidia?",
        "nani anaweza kupata msaada wa kurudi?",
        "asante",
    ],
}
LANGUAGES = tuple(SCRIPTS)
TARGETS = {"ack_p99_ms": 25.0, "throughput_ratio": 0.90, "e2e_p50_over_baseline_ms": 30.0}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def environment() -> None:
    """The services' environment: in dev mode, the secrets the launcher generated."""
    if os.environ.get("TWILIO_ACCOUNT_SID"):
        return
    try:
        from ops.launcher import environment as launcher_environment
        from ops.launcher import operator_login
    except ImportError:
        return
    # The operator's Redis login (`make run` gives every process its own; a client without
    # one is refused), read before the launcher's values, which name the Twilio account.
    login = operator_login(os.environ)
    for name, value in {**launcher_environment(), **login}.items():
        os.environ.setdefault(name, value)


@dataclass
class Conversation:
    index: int
    language: str
    number: str
    texts: list[str]
    language_so_far: str | None = None

    def metadata_language(self, text: str) -> str:
        # The same choice the worker makes, so Rasa does the same work on both paths.
        self.language_so_far = choose_language(text, self.language_so_far)
        return self.language_so_far


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)  # per message: until answered
    acks_ms: list[float] = field(default_factory=list)  # per webhook: until the gateway answered
    messages: int = 0
    seconds: float = 0.0
    lost: int = 0
    duplicated: int = 0
    expected_bodies: int = 0
    received_bodies: int = 0
    received_notes: int = 0  # "we received your message" notes to people kept waiting

    def summary(self) -> dict:
        rate = self.messages / self.seconds if self.seconds else 0.0
        out = {
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
            "msg_per_s": round(rate, 2),
            "e2e_p50_ms": round(percentile(self.latencies_ms, 0.50), 1),
            "e2e_p95_ms": round(percentile(self.latencies_ms, 0.95), 1),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "received_notes": self.received_notes,
        }
        if self.acks_ms:
            out |= {
                "ack_p50_ms": round(percentile(self.acks_ms, 0.50), 2),
                "ack_p99_ms": round(percentile(self.acks_ms, 0.99), 2),
                "acks": len(self.acks_ms),
            }
        return out


def pooled(phases: list[Phase]) -> Phase:
    """Several rounds of one path as one: all their latencies, messages and seconds."""
    total = Phase(phases[0].name)
    for phase in phases:
        total.latencies_ms += phase.latencies_ms
        total.acks_ms += phase.acks_ms
        total.messages += phase.messages
        total.seconds += phase.seconds
        total.lost += phase.lost
        total.duplicated += phase.duplicated
        total.expected_bodies += phase.expected_bodies
        total.received_bodies += phase.received_bodies
    return total


# The one "we received your message" note a person waiting in a backlog gets: a reply of its
# own, not an answer, so it is counted apart (neither an answer's time nor a duplicate).
_NOTES = keywords.load(ROOT / "data" / "keywords.yml")
RECEIVED_NOTES = {_NOTES.note("received_will_answer", language) for language in HOTLINE_LANGUAGES}


class Arrivals:
    """Replies reaching the sandbox, per number, timed by the sandbox itself."""

    def __init__(self, db: aioredis.Redis) -> None:
        self.db = db
        self.notes: dict[str, int] = defaultdict(int)
        self.times: dict[str, list[float]] = defaultdict(list)
        self.changed: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.pubsub = self.db.pubsub()
        await self.pubsub.subscribe(EVENTS)
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for message in self.pubsub.listen():
            if message.get("type") != "message":
                continue
            event = json.loads(message["data"])
            stored = await self.db.get(message_key(event["sid"]))
            if stored and json.loads(stored).get("body") in RECEIVED_NOTES:
                self.notes[event["to"]] += 1
                continue
            self.times[event["to"]].append(float(event["at"]))
            self.changed[event["to"]].set()

    async def wait(self, number: str, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.times[number]) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            event = self.changed[number]
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), timeout=left)
            except TimeoutError:
                return False
        return True

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.pubsub.aclose()


class Bench:
    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings, self.args = settings, args
        self.run = uuid.uuid4().hex[:6]
        self.webhook = settings.public_url.rstrip("/") + "/twilio/messages"
        self.token = settings.twilio_auth_token.get_secret_value()
        self.rasa_token = settings.rasa_token.get_secret_value()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        self.http = httpx.AsyncClient(timeout=120, limits=limits)
        # The bodies each message is answered with, learned on the baseline (same texts,
        # same language metadata), so the full path can be checked for lost or extra replies.
        self.expected: dict[tuple[str, int], int] = {}

    def conversations(self, prefix: int, count: int, messages: int) -> list[Conversation]:
        made = []
        for index in range(count):
            language = LANGUAGES[index % len(LANGUAGES)]
            texts = [SCRIPTS[language][m % len(SCRIPTS[language])] for m in range(messages)]
            number = f"+2588{prefix}{random.randint(0, 99999):05d}{index:04d}"
            made.append(Conversation(index, language, number, texts))
        return made

    async def post_webhook(self, number: str, body: str) -> float:
        sid = "SM" + uuid.uuid4().hex
        form = {
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.settings.twilio_sid,
            "From": number,
            "To": self.settings.twilio_sms_from,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        headers = {
            "X-Twilio-Signature": sign(self.token, self.webhook, form),
            "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        started = time.perf_counter()
        reply = await self.http.post(self.webhook, content=urlencode(form), headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if reply.status_code != 200:
            raise RuntimeError(f"the gateway answered {reply.status_code}")
        return elapsed

    async def rasa(self, sender: str, text: str, language: str) -> list[str]:
        params = {"token": self.rasa_token} if self.rasa_token else {}
        body = {
            "sender": sender,
            "message": text,
            "metadata": {"language": language, "channel": "sms"},
        }
        reply = await self.http.post(
            self.settings.rasa_url.rstrip("/") + "/webhooks/rest/webhook", json=body, params=params
        )
        reply.raise_for_status()
        return [m["text"] for m in reply.json() if m.get("text")]

    # ---------------------------------------------------------------- phases

    async def baseline(self, conversations: list[Conversation]) -> Phase:
        phase = Phase("baseline")

        async def talk(conv: Conversation) -> None:
            sender = f"bench{self.run}b{conv.index}"
            for position, text in enumerate(conv.texts):
                language = conv.metadata_language(text)
                started = time.perf_counter()
                texts = await self.rasa(sender, text, language)
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)
                self.expected[(conv.language, position)] = len(join_messages(texts)) if texts else 0
                phase.messages += 1

        started = time.perf_counter()
        await asyncio.gather(*(talk(c) for c in conversations))
        phase.seconds = time.perf_counter() - started
        return phase

    async def full_path(self, conversations: list[Conversation], arrivals: Arrivals) -> Phase:
        phase = Phase("full path")

        async def talk(conv: Conversation) -> None:
            received = 0
            for position, text in enumerate(conv.texts):
                bodies = self.expected.get((conv.language, position), 1)
                started_wall = time.time()
                phase.acks_ms.append(await self.post_webhook(conv.number, text))
                phase.messages += 1
                phase.expected_bodies += bodies
                if bodies == 0:
                    continue
                if not await arrivals.wait(conv.number, received + bodies, self.args.timeout):
                    phase.lost += 1
                    received = len(arrivals.times[conv.number])
                    continue
                first = arrivals.times[conv.number][received]
                phase.latencies_ms.append((first - started_wall) * 1000)
                received += bodies

        started = time.perf_counter()
        await asyncio.gather(*(talk(c) for c in conversations))
        phase.seconds = time.perf_counter() - started
        await asyncio.sleep(self.args.settle)  # late duplicates would show up here
        for conv in conversations:
            phase.received_bodies += len(arrivals.times[conv.number])
        phase.duplicated = max(0, phase.received_bodies - phase.expected_bodies)
        return phase

    async def ack_under_load(self, arrivals: Arrivals) -> Phase:
        """Webhooks at a fixed rate from new conversations (open loop), then all replies."""
        phase = Phase(f"acknowledgement at {self.args.rate}/s")
        total = int(self.args.rate * self.args.seconds)
        conversations = self.conversations(9, total, 1)
        interval = 1.0 / self.args.rate
        started = time.perf_counter()
        sent_at: dict[str, float] = {}
        tasks = []

        async def one(conv: Conversation) -> None:
            sent_at[conv.number] = time.time()
            phase.acks_ms.append(await self.post_webhook(conv.number, conv.texts[0]))

        for index, conv in enumerate(conversations):
            delay = started + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(conv)))
        await asyncio.gather(*tasks)
        phase.messages = total
        for conv in conversations:
            bodies = self.expected.get((conv.language, 0), 1)
            phase.expected_bodies += bodies
            if bodies and await arrivals.wait(conv.number, bodies, self.args.timeout):
                phase.latencies_ms.append(
                    (arrivals.times[conv.number][0] - sent_at[conv.number]) * 1000
                )
            elif bodies:
                phase.lost += 1
        phase.seconds = time.perf_counter() - started
        await asyncio.sleep(self.args.settle)
        phase.received_bodies = sum(len(arrivals.times[c.number]) for c in conversations)
        phase.received_notes = sum(arrivals.notes[c.number] for c in conversations)
        phase.duplicated = max(0, phase.received_bodies - phase.expected_bodies)
        return phase


async def run(args: argparse.Namespace) -> dict:
    environment()
    settings = Settings()
    if not settings.dev_mode:
        raise SystemExit(
            "the benchmark times replies at the sandbox: run it in dev mode (no TWILIO_ACCOUNT_SID)"
        )
    bench = Bench(settings, args)
    db = aioredis.Redis.from_url(settings.redis_url, decode_responses=True, **login(settings))
    arrivals = Arrivals(db)
    await arrivals.start()
    try:
        # Warm both paths (model caches, connection pools) with one conversation per language.
        warm = bench.conversations(7, len(LANGUAGES), 1)
        await bench.baseline([Conversation(c.index, c.language, c.number, c.texts) for c in warm])
        await bench.full_path(warm, arrivals)

        # Rasa's own speed drifts from minute to minute on a busy 2-core machine, so the two
        # paths take turns and each one's figures are pooled over all its rounds.
        baselines, fulls = [], []
        for _ in range(args.rounds):
            baselines.append(
                await bench.baseline(bench.conversations(1, args.conversations, args.messages))
            )
            fulls.append(
                await bench.full_path(
                    bench.conversations(2, args.conversations, args.messages), arrivals
                )
            )
        baseline, full = pooled(baselines), pooled(fulls)
        load = await bench.ack_under_load(arrivals)
    finally:
        await arrivals.stop()
        await bench.http.aclose()
        await db.aclose()

    b, f, a = baseline.summary(), full.summary(), load.summary()
    ratios = {
        "throughput_ratio": round(f["msg_per_s"] / b["msg_per_s"], 3) if b["msg_per_s"] else None,
        "e2e_p50_over_baseline_ms": round(f["e2e_p50_ms"] - b["e2e_p50_ms"], 1),
        "e2e_p95_over_baseline_ms": round(f["e2e_p95_ms"] - b["e2e_p95_ms"], 1),
    }
    checks = {
        "ack_p99_at_rate": a["ack_p99_ms"] <= TARGETS["ack_p99_ms"],
        "throughput_ratio": (ratios["throughput_ratio"] or 0) >= TARGETS["throughput_ratio"],
        "e2e_p50": ratios["e2e_p50_over_baseline_ms"] <= TARGETS["e2e_p50_over_baseline_ms"],
        "nothing_lost_or_duplicated": not any(p["lost"] or p["duplicated"] for p in (f, a)),
    }
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpus": os.cpu_count(),
        "conversations": args.conversations,
        "messages_per_conversation": args.messages,
        "rounds": args.rounds,
        "rate": args.rate,
        "baseline": b,
        "full_path": f,
        "ack_under_load": a,
        "ratios": ratios,
        "targets": TARGETS,
        "checks": checks,
    }


def report(result: dict) -> str:
    b, f, a, r = result["baseline"], result["full_path"], result["ack_under_load"], result["ratios"]
    lines = [
        (
            f"{result['conversations']} conversations x {result['messages_per_conversation']} messages, "
            f"{result['rounds']} rounds per path, {result['cpus']} CPUs"
        ),
        f"{'':26}{'msg/s':>8}{'e2e p50':>10}{'e2e p95':>10}{'ack p50':>10}{'ack p99':>10}{'lost':>6}{'dup':>5}{'notes':>7}",
    ]
    for name, p in (
        ("baseline (Rasa REST)", b),
        ("full path", f),
        (f"acks at {result['rate']}/s", a),
    ):
        lines.append(
            f"{name:<26}{p['msg_per_s']:>8.1f}{p['e2e_p50_ms']:>10.0f}{p['e2e_p95_ms']:>10.0f}"
            f"{p.get('ack_p50_ms', float('nan')):>10.1f}{p.get('ack_p99_ms', float('nan')):>10.1f}"
            f"{p['lost']:>6}{p['duplicated']:>5}{p.get('received_notes', 0):>7}"
        )
    lines.append(
        f"throughput ratio {r['throughput_ratio']}  e2e p50 +{r['e2e_p50_over_baseline_ms']} ms  "
        f"e2e p95 +{r['e2e_p95_over_baseline_ms']} ms over the baseline"
    )
    lines.append(
        "checks: "
        + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in result["checks"].items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="turns each path takes, alternating")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="webhooks per second in the ack phase"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the ack phase")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for one reply")
    parser.add_argument("--settle", type=float, default=2.0, help="wait for late duplicates")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
