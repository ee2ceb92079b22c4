"""The worker's promises beyond one message: order under parallel workers, reclaiming a
crashed consumer's messages, and dead letters an operator can list and replay."""

from __future__ import annotations

import asyncio
import random

import httpx
import redis

from channels import dlq
from channels.worker import Worker
from hotline import keys
from hotline.conversations import DEAD_LETTER_STREAM, INBOUND_STREAM
from hotline.ids import conversation_id
from tests.channels.conftest import BOT_REPLY, FakeRasa, Phone, Servers, run_sender, run_worker
from tests.conftest import SECRET


def parts(phone: Phone) -> list[str]:
    return [part for body in phone.received() for part in body.split("\n\n")]


def echo(body: dict) -> list[str]:
    return [f"answer to {body['message']}"]


def test_two_workers_keep_each_conversation_in_order(servers: Servers, db: redis.Redis) -> None:
    """Messages of one conversation go to both workers; each is still answered in order."""
    settings = servers.settings
    phones = [Phone(servers, f"+25884000040{i}") for i in range(4)]
    for round_ in range(5):
        for index, phone in enumerate(phones):
            assert phone.send(f"message {round_} of person {index}").status_code == 200

    class SlowRasa(FakeRasa):
        async def handle_async(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(random.uniform(0.0, 0.05))  # replies overtake one another
            return self.handler(request)

        def client(self, settings):
            from hotline.rasa import RasaClient

            transport = httpx.MockTransport(self.handle_async)
            return RasaClient(settings, client=httpx.AsyncClient(transport=transport))

    rasa = SlowRasa()
    rasa.replies = echo

    async def both() -> None:
        # Small reads and one shard each, so the two consumers share every conversation.
        workers = [
            Worker(
                settings,
                rasa=rasa.client(settings),
                consumer=f"test-{n}",
                concurrency=1,
                read_count=1,
                block_ms=20,
                claim_idle=5,
            )
            for n in (1, 2)
        ]
        await asyncio.gather(*(w.run_until_idle(timeout=30) for w in workers))
        for worker in workers:
            worker.close()

    asyncio.run(both())
    run_sender(settings)
    for index, phone in enumerate(phones):
        assert parts(phone) == [f"answer to message {r} of person {index}" for r in range(5)]
    assert sorted(rasa.texts) == sorted(
        f"message {r} of person {i}" for r in range(5) for i in range(4)
    )


def test_a_message_held_by_a_vanished_worker_elsewhere_is_answered(
    servers: Servers, db: redis.Redis
) -> None:
    """A consumer on another machine read the message and died: after claim_idle it is ours."""
    phone = Phone(servers)
    assert phone.send("Hello, I want to go back home").status_code == 200
    db.xgroup_create(INBOUND_STREAM, "workers", id="0")
    assert db.xreadgroup("workers", "otherhost-4242", {INBOUND_STREAM: ">"}, count=10)

    run_worker(servers.settings, FakeRasa(), claim_idle=0.3)
    run_sender(servers.settings)
    assert phone.received() == [BOT_REPLY["en"]]


def test_a_message_that_keeps_failing_is_dead_lettered_then_replayed(
    servers: Servers, db: redis.Redis
) -> None:
    phone = Phone(servers)
    assert phone.send("Hello, I want to go back home").status_code == 200
    broken = FakeRasa()
    # A 400 is not Rasa being away (that only waits): the message itself is the problem.
    broken.handler = lambda request: httpx.Response(400, json={"error": "bad"})  # type: ignore[method-assign]
    run_worker(servers.settings, broken, max_failures=3)

    dead = dlq.list_dead(db)
    assert len(dead) == 1 and dead[0]["error"].startswith("HTTPStatusError")
    assert "body" not in dead[0] and "address" not in dead[0]  # an operator's screen shows neither
    assert db.xlen(INBOUND_STREAM) == 0
    # Its writes go with its answer (channels.worker.Outcome): a message that failed wrote nothing,
    # not its language nor how to reach the person.
    assert db.hgetall(keys.conversation(conversation_id(phone.address, SECRET))) == {}

    # The operator fixes Rasa and replays: the person gets the answer after all.
    assert dlq.replay(db) == 1
    assert db.xlen(DEAD_LETTER_STREAM) == 0
    run_worker(servers.settings, FakeRasa())
    run_sender(servers.settings)
    assert phone.received() == [BOT_REPLY["en"]]


def test_a_message_tried_again_reaches_the_open_case_once(
    servers: Servers, db: redis.Redis
) -> None:
    """A person who stepped back to the bot writes while Rasa is away: the message waits and is
    answered when Rasa is back, and the counsellor's transcript holds it once."""
    from referral import waiting
    from referral.queue import Referrals

    settings = servers.settings
    phone = Phone(servers, "+258840000499")
    cid = conversation_id(phone.address, SECRET)
    referrals = Referrals(db)
    case_id = referrals.open_case(cid, priority="high", channel="sms", language="pt").case_id
    with db.pipeline(transaction=True) as pipe:
        waiting.step_back(pipe, cid, case_id)
        pipe.execute()

    class FlakyRasa(FakeRasa):
        """Down for the first two turns, then answering."""

        def handler(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/webhooks/rest/webhook" and self.failures < 2:
                self.failures += 1
                raise httpx.ConnectError("Rasa is restarting", request=request)
            return super().handler(request)

    rasa = FlakyRasa()
    rasa.failures = 0
    assert phone.send("onde fica o escritorio da OIM?").status_code == 200
    run_worker(settings, rasa, timeout=60)

    assert rasa.failures == 2 and rasa.texts == ["onde fica o escritorio da OIM?"]
    person_lines = [m.text for m in referrals.get(case_id).transcript if m.author == "person"]
    assert person_lines == ["onde fica o escritorio da OIM?"]


def test_the_worker_counts_what_it_answered_and_times_rasa(
    servers: Servers, db: redis.Redis
) -> None:
    """The worker's metrics (served on a loopback port in production) move with its work."""
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_bot = sample("hotline_inbound_handled_total", answered_by="bot")
    before_keyword = sample("hotline_inbound_handled_total", answered_by="keyword")
    before_calls = sample("hotline_rasa_call_seconds_count", outcome="ok")
    phone = Phone(servers, "+258840000498")
    assert phone.send("hello, I want to go home").status_code == 200
    assert phone.send("HELP").status_code == 200
    run_worker(servers.settings, FakeRasa(), timeout=30)

    assert sample("hotline_inbound_handled_total", answered_by="bot") == before_bot + 1
    assert sample("hotline_inbound_handled_total", answered_by="keyword") == before_keyword + 1
    assert sample("hotline_rasa_call_seconds_count", outcome="ok") == before_calls + 1
