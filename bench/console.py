"""Console benchmark: how fast the pages a counsellor lives in are, and how soon a case shows.

1. server time: a console of its own over a scratch Redis holding 500 open cases, one with a
   200-message transcript; the queue page and that case page are fetched one at a time and
   timed (loopback HTTP, so this is the server's time plus well under a millisecond);
2. webhook to queue (needs the running hotline, `make bench` starts it): a signed webhook
   with a danger-now message goes to the gateway while a signed-in console follows the
   server-sent events; timed from the webhook to the case's "opened" event, then the queue
   page is checked to show it.

3. history: a second scratch console over a Redis that fills with closed cases, 1,000, then
   10,000, then 100,000, closed evenly over the retention period (90 days, after which
   housekeeping purges them); at each size the queue page and the supervisor's dashboard are
   timed and Redis memory per closed case is read. The first size is the baseline: a page
   that stays flat has a ratio near 1.

Targets: page p95 <= 100 ms, webhook to queue <= 1 s. Writes JSON to bench/results/.

    python bench/console.py [--cases 500] [--transcript 200] [--requests 200] [--live 5]
                            [--history 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.twilio_adapter import sign
from hotline.settings import Settings
from hotline.store import login
from ops import processes
from referral import accounts
from referral.queue import Referrals

TARGETS = {"page_p95_ms": 100.0, "webhook_to_queue_s": 1.0}
PASSWORD = secrets.token_urlsafe(18)
# Danger now in four languages: each opens an emergency case without asking.
EMERGENCIES = [
    "socorro estão a bater-me agora, estou fechada num quarto",
    "help they are beating me right now i am locked in a room",
    "au secours ils me frappent maintenant je suis enfermée",
    "nisaidieni wananipiga sasa hivi nimefungiwa chumbani",
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def sign_in(http: httpx.Client, name: str) -> str:
    """Signs in and returns the session's CSRF token, read from the page's form."""
    response = http.post("/login", data={"name": name, "password": PASSWORD}, follow_redirects=True)
    response.raise_for_status()
    marker = 'name="csrf_token" value="'
    page = response.text
    return page[page.index(marker) + len(marker) :].split('"', 1)[0]


# ------------------------------------------------------------------ 1. server time


def seed(db: redis.Redis, cases: int, transcript: int) -> str:
    referrals = Referrals(db)
    now = time.time()
    long_case = ""
    for index in range(cases):
        priority = ("emergency", "high", "request")[index % 3]
        lines = [
            (now - 600 + i, "person" if i % 2 else "bot", f"mensagem número {i} da conversa")
            for i in range(4)
        ]
        opened = referrals.open_case(
            f"c{index:031x}",
            priority=priority,
            channel=("sms", "whatsapp")[index % 2],
            language=("pt", "en", "fr", "sw")[index % 4],
            risk_level="high",
            indicators=[{"name": "document_retention", "message_index": 1, "phrase": "passaporte"}],
            summary="passport taken; not free to leave",
            consent="given",
            trigger="risk",
            transcript=lines,
        )
        if index == 0:
            long_case = opened.case_id
    referrals.claim(long_case, "bench")
    for i in range(transcript - 4):
        if i % 2:
            referrals.reply(long_case, "bench", f"resposta {i}: pode ligar para a Linha Verde 1458")
        else:
            referrals.append_message(
                long_case, text=f"mensagem {i}: o patrão ficou com o meu passaporte"
            )
    return long_case


@contextmanager
def scratch_console():
    """A Redis and a console of their own, so the figures do not touch anyone's data."""
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    redis_port, console_port = processes.free_port(), processes.free_port()
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HOTLINE_ENV": "test",
        "HOTLINE_SECRET": secrets.token_urlsafe(32),
        "HOTLINE_FERNET_KEY": Fernet.generate_key().decode(),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("TWILIO_ACCOUNT_SID", None)
    store = subprocess.Popen(processes.redis_command(redis_port, folder), stdout=subprocess.DEVNULL)
    console = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(console_port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--factory",
            "referral.console.main:create_app",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{console_port}"
        if not processes.wait_http(url + "/healthz", 60):
            raise RuntimeError("the scratch console did not start")
        yield redis.Redis.from_url(env["REDIS_URL"], decode_responses=True), url
    finally:
        console.terminate()
        console.wait(timeout=10)
        store.terminate()
        store.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def server_time(cases: int, transcript: int, requests: int) -> dict:
    with scratch_console() as (db, url):
        started = time.perf_counter()
        long_case = seed(db, cases, transcript)
        print(
            f"seeded {cases} open cases and a {transcript}-message transcript in "
            f"{time.perf_counter() - started:.1f}s",
            flush=True,
        )
        accounts.add(db, "bench", "supervisor", PASSWORD, "en")
        figures = {}
        with httpx.Client(base_url=url, timeout=30) as http:
            sign_in(http, "bench")
            for name, path in (
                ("queue_page", "/"),
                ("case_page", f"/cases/{long_case}"),
                ("queue_api", "/api/queue"),
                ("dashboard", "/supervisor"),
            ):
                http.get(path).raise_for_status()  # warm: templates compiled, pools open
                timings = []
                for _ in range(requests):
                    began = time.perf_counter()
                    response = http.get(path)
                    timings.append((time.perf_counter() - began) * 1000)
                    response.raise_for_status()
                figures[name] = {
                    "p50_ms": round(percentile(timings, 0.5), 1),
                    "p95_ms": round(percentile(timings, 0.95), 1),
                }
                print(
                    f"  {name:<11} p50 {figures[name]['p50_ms']:>7.1f} ms   p95 {figures[name]['p95_ms']:>7.1f} ms",
                    flush=True,
                )
    return figures


# ------------------------------------------------------------------ 3. history


RETENTION_DAYS = 90
HISTORY_PAGES = (("queue_page", "/"), ("dashboard", "/supervisor"))


def close_cases(db: redis.Redis, first: int, count: int, total: int) -> None:
    """Cases `first` .. `first + count` of `total`, opened, claimed and closed through the
    queue's own scripts at times spread evenly over the retention period."""
    now = time.time()
    span = RETENTION_DAYS * 86400
    moment = [0.0]
    referrals = Referrals(db, clock=lambda: moment[0])
    for index in range(first, first + count):
        # Interleaved, so every size covers the whole period and not only its oldest part.
        moment[0] = now - span + span * ((index * 7919) % total) / total
        opened = referrals.open_case(
            f"h{index:031x}",
            priority=("emergency", "high", "request")[index % 3],
            channel=("sms", "whatsapp")[index % 2],
            language=("pt", "en", "fr", "sw")[index % 4],
            risk_level="high",
            indicators=[],
            summary="bench history",
            consent="given",
            trigger="risk",
            transcript=[(moment[0], "person", "preciso de ajuda para voltar")],
        )
        moment[0] += 300
        referrals.claim(opened.case_id, "bench")
        moment[0] += 1200
        referrals.close(opened.case_id, "bench", "information_given")


def history(sizes: list[int], requests: int) -> list[dict]:
    rows: list[dict] = []
    with scratch_console() as (db, url):
        seed(db, 50, 4)  # a working day's open queue beside the history
        accounts.add(db, "bench", "supervisor", PASSWORD, "en")
        empty = db.info("memory")["used_memory"]
        done = 0
        with httpx.Client(base_url=url, timeout=60) as http:
            sign_in(http, "bench")
            for size in sizes:
                started = time.perf_counter()
                close_cases(db, done, size - done, sizes[-1])
                done = size
                row: dict = {
                    "closed_cases": size,
                    "seed_s": round(time.perf_counter() - started, 1),
                    "memory_per_case_bytes": round(
                        (db.info("memory")["used_memory"] - empty) / size
                    ),
                }
                for name, path in HISTORY_PAGES:
                    http.get(path).raise_for_status()
                    timings = []
                    for _ in range(requests):
                        began = time.perf_counter()
                        http.get(path).raise_for_status()
                        timings.append((time.perf_counter() - began) * 1000)
                    row[name] = {
                        "p50_ms": round(percentile(timings, 0.5), 1),
                        "p95_ms": round(percentile(timings, 0.95), 1),
                    }
                rows.append(row)
                base = rows[0]
                print(
                    f"  {size:>7} closed: "
                    + "   ".join(
                        f"{name} p95 {row[name]['p95_ms']:>7.1f} ms "
                        f"({row[name]['p95_ms'] / max(base[name]['p95_ms'], 0.1):.1f}x)"
                        for name, _ in HISTORY_PAGES
                    )
                    + f"   {row['memory_per_case_bytes']} B/case (seeded in {row['seed_s']} s)",
                    flush=True,
                )
    return rows


# ------------------------------------------------------------------ 2. webhook to queue


def webhook_to_queue(rounds: int) -> list[float]:
    from bench.load import environment

    environment()
    settings = Settings()
    db = redis.Redis.from_url(settings.redis_url, decode_responses=True, **login(settings))
    name = "bench-" + uuid.uuid4().hex[:8]
    accounts.add(db, name, "counsellor", PASSWORD, "en")
    webhook = settings.public_url.rstrip("/") + "/twilio/messages"
    token = settings.twilio_auth_token.get_secret_value()
    seconds: list[float] = []
    opened: list[str] = []
    try:
        with httpx.Client(base_url="http://127.0.0.1:8080", timeout=30) as http:
            sign_in(http, name)
            for index in range(rounds):
                number = f"+25882{uuid.uuid4().int % 10**7:07d}"
                sid = "SM" + uuid.uuid4().hex
                form = {
                    "MessageSid": sid,
                    "AccountSid": settings.twilio_sid,
                    "From": number,
                    "To": settings.twilio_sms_from,
                    "Body": EMERGENCIES[index % len(EMERGENCIES)],
                    "NumMedia": "0",
                    "SmsStatus": "received",
                    "ApiVersion": "2010-04-01",
                }
                headers = {
                    "X-Twilio-Signature": sign(token, webhook, form),
                    "Content-Type": "application/x-www-form-urlencoded",
                }
                with http.stream("GET", "/events", timeout=httpx.Timeout(30, read=30)) as events:
                    lines = events.iter_lines()
                    next(lines)  # the stream is open and following from now
                    began = time.perf_counter()
                    httpx.post(webhook, content=urlencode(form), headers=headers).raise_for_status()
                    case_id = ""
                    for line in lines:
                        if line.startswith("data:"):
                            event = json.loads(line[5:])
                            if event.get("action") == "opened":
                                case_id = event["case"]
                                break
                    seconds.append(time.perf_counter() - began)
                opened.append(case_id)
                if case_id not in http.get("/").text:
                    raise RuntimeError("the case announced by the event is not on the queue page")
                print(f"  webhook to queue {seconds[-1] * 1000:7.0f} ms ({case_id})", flush=True)
    finally:
        # Leave no benchmark emergencies in a counsellor's queue, nor the bench's account.
        for case_id in filter(None, opened):
            Referrals(db).close(case_id, name, "not_a_case", note="benchmark")
        db.delete(accounts._key(name))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--transcript", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--live", type=int, default=5, help="webhook rounds; 0 skips (no hotline running)"
    )
    parser.add_argument(
        "--history",
        default="1000,10000,100000",
        help="closed-case counts to time the pages at, comma-separated; empty skips",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    print(f"console pages with {args.cases} open cases:", flush=True)
    result: dict = {"pages": server_time(args.cases, args.transcript, args.requests)}
    worst = max(page["p95_ms"] for page in result["pages"].values())
    print(
        f"  worst p95 {worst:.1f} ms (target <= {TARGETS['page_p95_ms']:.0f} ms): "
        f"{'met' if worst <= TARGETS['page_p95_ms'] else 'MISSED'}"
    )
    sizes = sorted(int(size) for size in args.history.split(",") if size.strip())
    if sizes:
        print(
            f"console pages as closed cases accumulate over {RETENTION_DAYS} days "
            f"(ratio against {sizes[0]}):",
            flush=True,
        )
        result["history"] = history(sizes, max(10, args.requests // 10))
    if args.live:
        print("webhook to the case on an open queue page:", flush=True)
        seconds = webhook_to_queue(args.live)
        result["webhook_to_queue_s"] = {
            "median": round(percentile(seconds, 0.5), 3),
            "max": round(max(seconds), 3),
        }
        print(
            f"  median {result['webhook_to_queue_s']['median']:.2f} s, max {max(seconds):.2f} s "
            f"(target <= {TARGETS['webhook_to_queue_s']:.0f} s): "
            f"{'met' if max(seconds) <= TARGETS['webhook_to_queue_s'] else 'MISSED'}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / time.strftime("console-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
