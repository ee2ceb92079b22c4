"""After an erasure, no byte of the person's texts or number is left in Redis's files.

A real redis-server with the production settings (deploy/redis/hotline.conf: append-only,
fsync every second, no save points), in a data folder of the test's own, and a grep of every
file in it: the append-only files (base, incremental, manifest) and any dump.rdb.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from channels.inbound import InboundEntry
from hotline import conversations, ids, keys
from hotline.settings import PROJECT_ROOT
from ops import processes, redis_users
from referral import privacy
from referral.queue import Referrals
from tests.conftest import FERNET_KEY, SECRET
from tests.referral.test_privacy import rasa_reading

PRODUCTION_CONF = PROJECT_ROOT / "deploy" / "redis" / "hotline.conf"
PASSWORDS = {user: redis_users.derived_password("k" * 32, user) for user in redis_users.RULES}
NUMBER = "+258849990017"
TEXTS = (
    "zebra-quintal-4471 o patrao ficou com o meu passaporte",
    "estou fechada na casa numero 88 da rua Kuwiriwa",
)
OTHER_TEXT = "another person asks about the AVRR office in Maputo"


class DiskRedis:
    def __init__(self, client: redis.Redis, data_dir: Path) -> None:
        self.db, self.data_dir = client, data_dir

    def files(self) -> dict[str, bytes]:
        return {
            str(path.relative_to(self.data_dir)): path.read_bytes()
            for path in sorted(self.data_dir.rglob("*"))
            if path.is_file()
        }

    def holding(self, *needles: str) -> dict[str, list[str]]:
        """Which needles each file holds (none: an empty dict)."""
        found: dict[str, list[str]] = {}
        for name, data in self.files().items():
            hits = [n for n in needles if n.encode() in data]
            if hits:
                found[name] = hits
        return found

    def settle(self) -> None:
        """Wait for Redis to delete the files a rewrite replaced (a background job)."""
        aof_dir = self.data_dir / "appendonlydir"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            manifest = (aof_dir / "appendonly.aof.manifest").read_text()
            extra = [
                p.name
                for p in aof_dir.iterdir()
                if p.name not in manifest and not p.name.endswith(".manifest")
            ]
            if not extra:
                return
            time.sleep(0.05)
        raise AssertionError(f"former AOF files not deleted: {extra}")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[DiskRedis]:
    port = processes.free_port()
    data_dir = tmp_path / "redis"
    data_dir.mkdir()
    acl = tmp_path / "users.acl"
    acl.write_text(redis_users.acl_file(PASSWORDS))
    server = subprocess.Popen(
        [
            "redis-server",
            str(PRODUCTION_CONF),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            # Only so that a grep sees what a snapshot holds: LZF would hide a repeated text.
            "--rdbcompression",
            "no",
            # The users production has, from a file of the test's own (outside the data).
            "--aclfile",
            str(acl),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    operator = redis.Redis(port=port, username="ops", password=PASSWORDS["ops"])
    deadline = time.monotonic() + 10
    while True:
        try:
            operator.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert operator.config_get("appendonly") == {"appendonly": "yes"}
    assert operator.config_get("save") == {"save": ""}
    # Erasure runs in the worker (DELETE by SMS) as the worker's own Redis user.
    client = redis.Redis(
        port=port, username="worker", password=PASSWORDS["worker"], decode_responses=True
    )
    try:
        yield DiskRedis(client, data_dir)
    finally:
        client.close()
        operator.close()
        server.kill()
        server.wait(timeout=10)


def a_conversation(
    db: redis.Redis, number: str, texts: tuple[str, ...], referrals: Referrals | None = None
) -> dict[str, str]:
    """What the gateway, worker, Rasa, queue and sender leave of a person's messages.

    Returns the conversation id and the sealed forms of the number the messages carried.
    """
    cid = ids.conversation_id(number, SECRET)
    sealed: dict[str, str] = {"cid": cid}
    for group in ("workers", "senders"):
        for stream in (keys.INBOUND_STREAM, keys.OUTBOUND_STREAM):
            try:
                db.xgroup_create(stream, group, id="$", mkstream=True)
            except redis.ResponseError:
                pass
    for n, text in enumerate(texts):
        address = f"whatsapp:{number}" if n % 2 else number
        sealed[f"entry{n}"] = ids.seal(address, FERNET_KEY)
        entry = InboundEntry(cid, sealed[f"entry{n}"], "sms", text, time.time(), f"SM{n}{cid}")
        # The gateway appends; a worker reads, answers, acknowledges and deletes (XDEL).
        entry_id = db.xadd(keys.INBOUND_STREAM, entry.fields())
        db.xreadgroup("workers", "w-1", {keys.INBOUND_STREAM: ">"})
        sealed["remembered"] = ids.seal(address, FERNET_KEY)
        conversations.remember(
            db, cid, channel="sms", sealed_address=sealed["remembered"], at=time.time()
        )
        # Rasa's tracker (the REST channel writes the whole tracker each turn).
        events = [{"event": "user", "text": t} for t in texts[: n + 1]]
        db.set(keys.tracker(cid), json.dumps({"sender_id": cid, "events": events}))
        db.xack(keys.INBOUND_STREAM, "workers", entry_id)
        db.xdel(keys.INBOUND_STREAM, entry_id)
        # The reply, sent and deleted by the sender.
        reply = conversations.outbound_fields(cid, f"resposta a {n}", source="bot")
        reply_id = db.xadd(keys.OUTBOUND_STREAM, reply)
        db.xreadgroup("senders", "s-1", {keys.OUTBOUND_STREAM: ">"})
        db.xack(keys.OUTBOUND_STREAM, "senders", reply_id)
        db.xdel(keys.OUTBOUND_STREAM, reply_id)
    # A message that kept failing, and a case with the words quoted.
    db.xadd(keys.DEAD_LETTER_STREAM, {"conversation_id": cid, "text": texts[0], "from": number})
    sealed["case"] = (
        (referrals or Referrals(db))
        .open_case(
            cid,
            priority="high",
            channel="sms",
            language="pt",
            indicators=[{"name": "documents_confiscated", "message_index": 0, "phrase": texts[0]}],
            transcript=[(1.0, "person", t) for t in texts],
        )
        .case_id
    )
    return sealed


def someone_else_is_waiting(db: redis.Redis) -> str:
    """Another person's message, not yet answered: it must come through the erasure intact."""
    entry = InboundEntry("cother", "sealed-other", "sms", OTHER_TEXT, time.time(), "SMother")
    entry_id = db.xadd(keys.INBOUND_STREAM, entry.fields())
    db.xreadgroup("workers", "w-2", {keys.INBOUND_STREAM: ">"})
    return entry_id


def test_before_an_erasure_the_files_hold_the_texts_and_the_number(disk: DiskRedis) -> None:
    """The check below can fail: the grep finds the words while they are there."""
    sealed = a_conversation(disk.db, NUMBER, TEXTS)
    found = disk.holding(*TEXTS, NUMBER, sealed["entry0"])
    assert {needle for hits in found.values() for needle in hits} == {
        *TEXTS,
        NUMBER,
        sealed["entry0"],
    }


def test_deleting_entries_and_rewriting_alone_would_leave_the_texts(disk: DiskRedis) -> None:
    """Why the streams are rebuilt: XDEL only flags an entry; its bytes go into the rewrite."""
    a_conversation(disk.db, NUMBER, TEXTS)
    someone_else_is_waiting(disk.db)  # a live entry keeps the listpack node alive
    disk.db.delete(keys.tracker(ids.conversation_id(NUMBER, SECRET)))
    assert privacy.rewrite_files(disk.db)
    disk.settle()
    assert TEXTS[1] in "".join(hit for hits in disk.holding(*TEXTS).values() for hit in hits)


def test_after_an_erasure_no_file_holds_the_texts_or_the_number(disk: DiskRedis, settings) -> None:
    sealed = a_conversation(disk.db, NUMBER, TEXTS)
    waiting = someone_else_is_waiting(disk.db)
    cid = sealed["cid"]

    result = asyncio.run(
        privacy.erase_conversation(
            disk.db, rasa_reading(disk.db, settings), cid, fernet_key=FERNET_KEY
        )
    )

    assert result.on_disk
    disk.settle()
    gone = [
        *TEXTS,
        NUMBER,
        NUMBER.lstrip("+"),
        *(sealed[k] for k in sealed if k.startswith("entry")),
    ]
    gone.append(sealed["remembered"])
    # Only the sealed number of the grace (to deliver "your data was deleted") is kept a while.
    kept = sealed["remembered"]
    assert disk.holding(*(g for g in gone if g != kept)) == {}
    # The other person's waiting message is still there, still pending for its worker.
    assert [f["body"] for _, f in disk.db.xrange(keys.INBOUND_STREAM)] == [OTHER_TEXT]
    pending = disk.db.xpending_range(keys.INBOUND_STREAM, "workers", "-", "+", 10)
    assert [(p["message_id"], p["consumer"]) for p in pending] == [(waiting, "w-2")]
    assert disk.holding(OTHER_TEXT)

    # Twilio's copies are next: the sender is left the number, sealed afresh (tested in
    # tests/channels/test_twilio_erasure.py), so no copy above matched it.
    assert disk.db.xlen(keys.TWILIO_ERASURES_STREAM) == 1

    # Once the grace is over, the next rewrite leaves neither the sealed number nor the id.
    disk.db.pexpire(keys.conversation(cid), 1)
    time.sleep(0.01)
    assert not disk.db.exists(keys.conversation(cid))
    assert privacy.rewrite_files(disk.db)
    disk.settle()
    assert disk.holding(*gone, cid) == {}


def test_a_purge_that_removed_a_quiet_conversation_rewrites_the_files(disk: DiskRedis) -> None:
    day = 86400.0
    now = time.time()
    referrals = Referrals(disk.db, clock=lambda: now - 100 * day)
    sealed = a_conversation(disk.db, NUMBER, TEXTS, referrals)
    referrals.close(sealed["case"], "ana", "referred_avrr")
    disk.db.hset(keys.conversation(sealed["cid"]), "last_inbound", str(now - 100 * day))

    assert privacy.purge(disk.db, 90 * day, now=now, fernet_key=FERNET_KEY) == 1

    disk.settle()
    assert disk.holding(*TEXTS, NUMBER, *(v for k, v in sealed.items() if k != "case")) == {}
    assert disk.db.xlen(keys.TWILIO_ERASURES_STREAM) == 1  # and Twilio's copies are next
