"""Turn-cost benchmark: how long Rasa takes to answer one message of a conversation that already
has 10, 100 or 500 turns, with the history as Rasa keeps it (the baseline) and compacted as
the router keeps it (channels/history.py), in the same run against the same Rasa.

Histories are built by repeating one real turn of this Rasa (its events, with later
timestamps) and written to Redis in Rasa's own format, so the 500-turn case takes seconds to
set up rather than an hour. Each history is timed over a few turns through Rasa's REST channel.
It also prints the stored size (Redis MEMORY USAGE) of each history.
Needs the running hotline (`make bench` starts it). Writes JSON to bench/results/.

    python bench/turns.py [--turns 10 100 500] [--samples 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels import history
from hotline import keys
from hotline.settings import Settings
from hotline.store import login

QUESTION = "quero voltar para Moçambique, como faço?"
METADATA = {"language": "pt", "channel": "sms"}


def say(client: httpx.Client, sender: str) -> float:
    started = time.perf_counter()
    reply = client.post(
        "/webhooks/rest/webhook",
        json={"sender": sender, "message": QUESTION, "metadata": METADATA},
        timeout=120,
    )
    reply.raise_for_status()
    return time.perf_counter() - started


def one_turn(db: redis.Redis, client: httpx.Client) -> tuple[list[dict], list[dict]]:
    """A real conversation's opening events and the events of one later turn."""
    sender = f"bench-{uuid.uuid4().hex[:24]}"
    say(client, sender)
    opening = json.loads(db.get(keys.tracker(sender)))["events"]
    say(client, sender)
    events = json.loads(db.get(keys.tracker(sender)))["events"]
    db.delete(keys.tracker(sender))
    return opening, events[len(opening) :]


def seeded(opening: list[dict], turn: list[dict], turns: int) -> list[dict]:
    """An opening and `turns` copies of a turn, each a second later than the one before."""
    events = [dict(e) for e in opening]
    start = max(float(e.get("timestamp") or 0) for e in opening)
    for n in range(turns):
        for event in turn:
            events.append({**event, "timestamp": start + n + 1 + 1e-6 * len(events)})
    return events


def timed(db: redis.Redis, client: httpx.Client, events: list[dict], compact: bool, samples: int):
    sender = f"bench-{uuid.uuid4().hex[:24]}"
    key = keys.tracker(sender)
    db.set(key, json.dumps({"name": sender, "events": events}), ex=3600)
    if compact:
        history.compact(db, sender)
    size = db.memory_usage(key) or 0
    times = []
    for _ in range(samples):
        times.append(say(client, sender))
        if compact:
            history.compact(db, sender)  # as the router does after each turn
    db.delete(key)
    return statistics.median(times), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    from bench.load import environment

    environment()  # the running hotline's settings and the operator's Redis login
    settings = Settings()
    db = redis.Redis.from_url(settings.redis_url, decode_responses=True, **login(settings))
    params = {"token": settings.rasa_token.get_secret_value()} if settings.rasa_token else {}
    with httpx.Client(base_url=settings.rasa_url, params=params) as client:
        try:
            opening, turn = one_turn(db, client)
        except (httpx.HTTPError, redis.RedisError, TypeError) as error:
            print(f"bench/turns.py: Rasa or Redis is not answering ({error}); run `make bench`")
            return 1
        rows = []
        for turns in args.turns:
            events = seeded(opening, turn, turns)
            baseline, baseline_size = timed(db, client, events, False, args.samples)
            kept, kept_size = timed(db, client, events, True, args.samples)
            rows.append(
                {
                    "turns": turns,
                    "baseline_s": round(baseline, 3),
                    "compacted_s": round(kept, 3),
                    "ratio": round(baseline / kept, 2) if kept else None,
                    "baseline_bytes": baseline_size,
                    "compacted_bytes": kept_size,
                }
            )
    print(f"Turn cost, median of {args.samples} turns through Rasa's REST channel:")
    print("turns  baseline s  compacted s  baseline/compacted  stored KB (baseline -> compacted)")
    for row in rows:
        print(
            f"{row['turns']:>5}  {row['baseline_s']:>10.3f}  {row['compacted_s']:>11.3f}  "
            f"{row['ratio']:>18}  {row['baseline_bytes'] / 1024:.0f} -> "
            f"{row['compacted_bytes'] / 1024:.0f}"
        )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"turns-{int(time.time())}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
