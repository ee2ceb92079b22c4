"""A backlog is not silent: a person whose message waits is told it arrived, once, while it
waits; an operator sees how many messages wait and for how long.

The backlog is built for real: one `python -m channels.worker` with one shard in front of a
Rasa stand-in that takes a second a message, and sixteen people writing at once.
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import redis

from channels import keywords
from channels.router import BACKLOG_NOTE_AFTER
from hotline.settings import PROJECT_ROOT
from tests.channels.conftest import ChannelProcess, Phone, Servers, service_env, wait_for
from tests.channels.test_faults import StubRasa, all_answered, twilio_post

NOTES = keywords.load(PROJECT_ROOT / "data" / "keywords.yml")
PEOPLE = 16
RASA_SECONDS = 1.0


def arrivals(phone: Phone) -> list[tuple[float, str]]:
    """(when the sandbox took it, text) of every message the phone got, split as sent."""
    thread = httpx.post(
        phone.servers.sandbox_url + "/phone/thread",
        json={"channel": phone.channel, "number": phone.number},
        timeout=10,
    ).json()["messages"]
    return [
        (float(m["at"]), part)
        for m in thread
        if m["direction"] == "out"
        for part in m["body"].split("\n\n")
    ]


def test_people_waiting_in_a_backlog_are_told_once_and_the_operator_sees_it(
    servers: Servers, db: redis.Redis, settings_factory, tmp_path
) -> None:
    stub = StubRasa(delay=RASA_SECONDS)
    settings = settings_factory(
        RASA_URL=stub.url,
        RASA_TOKEN="",
        PUBLIC_URL=servers.gateway_url,
        SANDBOX_URL=servers.sandbox_url,
    )
    env = service_env(settings, HOTLINE_WORKER_CONCURRENCY="1")
    phones = [Phone(servers, f"+2588400007{i:02d}") for i in range(PEOPLE)]
    note = NOTES.note("received_will_answer", "en")
    sender = ChannelProcess("channels.sender", env, tmp_path).start()
    worker = ChannelProcess("channels.worker", env, tmp_path).start()
    try:
        posted: dict[str, float] = {}
        for index, phone in enumerate(phones):
            twilio_post(phone, f"hello, I am person {index} and I want to go home")
            posted[phone.number] = time.time()

        # Half-way, the operator looks.
        time.sleep(5)
        health = httpx.get(servers.gateway_url + "/healthz", timeout=10).json()
        cli = subprocess.run(
            [sys.executable, "-m", "ops.cli", "backlog"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wait_for(lambda: all_answered(db, phones), timeout=90), worker.output()
        for index, phone in enumerate(phones):
            answer = f"answer: hello, I am person {index} and I want to go home"
            assert wait_for(lambda p=phone, a=answer: a in [t for _, t in arrivals(p)], 30), (
                arrivals(phone),
                sender.output(),
            )
    finally:
        worker.kill()
        sender.kill()
        stub.close()

    inbound = health["inbound"]
    assert inbound["waiting"] >= PEOPLE - 7, health
    assert inbound["oldest_wait_seconds"] >= 4.5, health
    assert cli.returncode == 0, cli.stderr
    assert "message(s) waiting for an answer" in cli.stdout and "the oldest for" in cli.stdout

    noted, waits, told = 0, [], []
    for index, phone in enumerate(phones):
        got = arrivals(phone)
        texts = [text for _, text in got]
        answer_at = next(at for at, text in got if text.startswith("answer:"))
        waited = answer_at - posted[phone.number]
        waits.append(waited)
        assert texts.count(note) <= 1, texts  # once, however long the wait
        assert len(texts) - texts.count(note) == 1, texts  # one answer
        if waited > BACKLOG_NOTE_AFTER + 3:
            # Told while still waiting: the note came well before the answer was even ready.
            assert texts == [note, texts[1]], (index, texts)
            note_at = got[0][0]
            assert note_at - posted[phone.number] < BACKLOG_NOTE_AFTER + 2.5, (index, got)
            assert answer_at - note_at > 1.0, (index, got)
            noted += 1
        if note in texts:
            told.append(got[0][0] - posted[phone.number])
        elif waited < BACKLOG_NOTE_AFTER - 1:
            assert note not in texts, (index, texts)  # a short wait gets the answer alone
    assert noted >= 2, waits
    print(
        f"backlog: {PEOPLE} people, waits {min(waits):.1f}-{max(waits):.1f} s, "
        f"{len(told)} told it arrived, {min(told):.1f}-{max(told):.1f} s after writing "
        f"({noted} of them long before their answer); /healthz {inbound}; cli: {cli.stdout.strip()}"
    )
