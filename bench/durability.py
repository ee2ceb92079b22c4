"""Durability benchmark: what fsync on every write costs the gateway's acknowledgement.

A webhook is acknowledged to Twilio once the gateway's enqueue script (channels/inbound.py,
the duplicate check and XADD in one Lua call) returns; Twilio never sends it again. With
`appendfsync everysec` a host crash loses up to a second of acknowledged messages; with
`always` Redis fsyncs the append-only file before it answers. This starts two real Redis
servers side by side (the same binary, the same disk, the same process), drives the real
enqueue from 16 concurrent webhooks, and prints enqueue latency and throughput for each
and the ratio. Writes JSON to bench/results/durability.json.

    python bench/durability.py [--messages 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import redis.asyncio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.inbound import InboundEntry, InboundQueue
from ops import processes

RESULTS = ROOT / "bench" / "results"


def start_redis(folder: Path, fsync: str) -> tuple[subprocess.Popen, int]:
    port = processes.free_port()
    command = processes.redis_command(port, folder)
    command[command.index("--appendfsync") + 1] = fsync
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return server, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"redis-server with appendfsync {fsync} did not start")


async def drive(port: int, messages: int, concurrency: int) -> dict[str, float]:
    db = redis.asyncio.Redis(port=port)
    queue = InboundQueue(db)
    latencies: list[float] = []
    counter = iter(range(messages))

    async def webhook_sender() -> None:
        for number in counter:
            entry = InboundEntry(
                conversation_id=f"c{number % 200:031d}",
                sealed_address="gAAAAAB" + "x" * 120,
                channel="sms",
                body="preciso de ajuda para voltar para casa, estou em joburg sem documentos",
                received_at=time.time(),
                message_sid="SM" + uuid.uuid4().hex,
            )
            started = time.perf_counter()
            await queue.add(entry)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(webhook_sender() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await db.aclose()
    latencies.sort()
    return {
        "messages": messages,
        "per_second": messages / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-durability-", dir=ROOT / "var") as folder:
        for fsync in ("everysec", "always"):
            server, port = start_redis(Path(folder) / fsync, fsync)
            try:
                results[fsync] = asyncio.run(drive(port, args.messages, args.concurrency))
            finally:
                server.terminate()
                server.wait(timeout=10)
    base, safe = results["everysec"], results["always"]
    print(f"enqueue of {args.messages} webhooks, {args.concurrency} at a time, real Redis:")
    for name, figures in results.items():
        print(
            f"  appendfsync {name:<9} {figures['per_second']:8.0f}/s  p50 {figures['p50_ms']:6.2f} ms"
            f"  p99 {figures['p99_ms']:6.2f} ms  max {figures['max_ms']:7.2f} ms"
        )
    print(
        f"  always / everysec: throughput x{safe['per_second'] / base['per_second']:.2f}, "
        f"p99 latency x{safe['p99_ms'] / base['p99_ms']:.2f}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "durability.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
