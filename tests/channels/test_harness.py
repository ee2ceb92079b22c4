"""One table-driven harness for the Twilio channel, courier style.

Each row is what a person's phone (or Twilio) does, and what they should notice: the HTTP
answers Twilio gets, the texts Rasa sees, and the SMS or WhatsApp messages that come back.
The real gateway and sandbox run on loopback ports over a real Redis; the worker and the
sender run in process with the real `twilio` client. Every row ends by checking the
captured logs (everything, at DEBUG) for the phone number, the message texts and secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from channels import delivery, keywords, twilio_adapter
from channels.sender import twilio_client
from hotline import conversations, keys
from hotline.conversations import INBOUND_STREAM
from hotline.ids import conversation_id
from referral import rota
from referral.queue import Referrals
from referral.texts import text as handoff_text
from tests.channels.conftest import (
    BOT_REPLY,
    FakeRasa,
    Phone,
    Servers,
    run_sender,
    run_worker,
    wait_for,
)
from tests.conftest import AUTH_TOKEN, FERNET_KEY, SECRET

NUMBER = "+258840000001"
KW = keywords.load(keywords.Path(__file__).resolve().parents[2] / "data" / "keywords.yml")
LONG = ("Preciso de ajuda para voltar a casa com os meus filhos. " * 40)[:1601]
ACCENTS = "Olá 🙏 preciso de ajuda, não tenho passaporte e o patrão não paga"


def note(name: str, language: str) -> str:
    return KW.note(name, language)


def joined(*parts: str) -> str:
    """Consecutive replies the sender packs into one SMS."""
    return "\n\n".join(parts)


@dataclass(frozen=True)
class Post:
    body: str = ""
    sid: str | None = None
    signature: str | None = "valid"  # "valid", "bad" or None (header missing)
    token: str | None = None
    media: int = 0
    size: int | None = None  # post a raw body of this many bytes instead of a form


@dataclass
class Context:
    servers: Servers
    db: redis.Redis
    phone: Phone
    rasa: FakeRasa

    @property
    def cid(self) -> str:
        return conversation_id(self.phone.address, SECRET)

    def sandbox(self, path: str, **body: Any) -> None:
        assert httpx.post(self.servers.sandbox_url + path, json=body, timeout=5).status_code == 200

    def records(self) -> list[dict[str, str]]:
        return [self.db.hgetall(k) for k in sorted(self.db.scan_iter(keys.DELIVERY.glob()))]


@dataclass(frozen=True)
class Row:
    name: str
    posts: tuple[Post, ...]
    statuses: tuple[int, ...]
    rasa_saw: tuple[str, ...]
    replies: tuple[str, ...]
    channel: str = "sms"
    together: bool = False  # post everything before the worker runs (else one turn per post)
    rasa_down_for: float = 0.0
    rasa_replies: Callable[[dict], list[str]] | None = None
    before: Callable[[Context], None] | None = None
    after: Callable[[Context], None] | None = None
    skip_text_check: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------- row hooks


def _rasa_saw_only_the_pseudonym(ctx: Context) -> None:
    body = ctx.rasa.seen[0]
    assert body["sender"] == ctx.cid and NUMBER not in str(body)
    # The MessageSid lets a retried message be found in the tracker instead of sent twice.
    assert body["metadata"] == {
        "language": "en",
        "channel": ctx.phone.channel,
        "message_sid": body["metadata"]["message_sid"],
    }
    assert body["metadata"]["message_sid"].startswith("SM")


def _whatsapp_reply_went_from_the_whatsapp_sender(ctx: Context) -> None:
    _rasa_saw_only_the_pseudonym(ctx)
    # Fetched by sid: a list filtered by To would put the number in a URL that urllib3 logs.
    sid = next(ctx.db.scan_iter(keys.delivery("SM*"))).removeprefix(keys.delivery(""))
    sent = twilio_client(ctx.servers.settings).messages(sid).fetch()
    assert (sent.to, sent.from_) == (
        f"whatsapp:{NUMBER}",
        ctx.servers.settings.twilio_whatsapp_from,
    )


def _nothing_stored(ctx: Context) -> None:
    assert ctx.db.xlen(INBOUND_STREAM) == 0 if ctx.db.exists(INBOUND_STREAM) else True
    assert not list(ctx.db.scan_iter(keys.SEEN.glob()))
    assert not ctx.db.exists(conversations.key(ctx.cid))


def _opted_out(ctx: Context) -> None:
    assert conversations.state(ctx.db, ctx.cid).get("opted_out") == "1"


def _opted_in(ctx: Context) -> None:
    assert "opted_out" not in conversations.state(ctx.db, ctx.cid)


def _record_reaches(status: str, error: str | None = None) -> Callable[[Context], None]:
    def check(ctx: Context) -> None:
        records = wait_for(lambda: [r for r in ctx.records() if r.get("status") == status])
        assert len(records) == 1, ctx.records()
        record = records[0]
        assert record["conversation_id"] == ctx.cid and record["channel"] == ctx.phone.channel
        assert record["segments"] == "1"
        assert not any(NUMBER.lstrip("+") in value for value in record.values())
        if error:
            assert record["error_code"] == error
            assert ctx.db.zcard(delivery.UNDELIVERED) == 1
        # A callback Twilio did not sign changes nothing.
        sid = next(k for k in ctx.db.scan_iter(keys.delivery("SM*"))).removeprefix(
            keys.delivery("")
        )
        forged = {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "30007"}
        assert ctx.phone.post(forged, path="/twilio/status", signature="bad").status_code == 403
        assert ctx.db.hget(delivery.record_key(sid), "status") == status

    return check


def _refused_with_21610(ctx: Context) -> None:
    _opted_out(ctx)
    rejected = [r for r in ctx.records() if r.get("status") == "rejected"]
    assert [r["error_code"] for r in rejected] == ["21610"]
    assert ctx.db.get(keys.SANDBOX_ATTEMPTS_KEY) == "1", "21610 must not be retried"


def _erased(ctx: Context) -> None:
    state = conversations.state(ctx.db, ctx.cid)
    assert set(state) <= {"address", "channel"}  # only what delivers the confirmation, briefly
    assert 0 < ctx.db.ttl(conversations.key(ctx.cid)) <= 600


def _relayed_to_case(ctx: Context) -> None:
    case = Referrals(ctx.db).get(ctx.db.get(keys.open_case(ctx.cid)) or _case_id(ctx))
    assert [m.text for m in case.transcript if m.author == "person"] == [ACCENTS]


def _case_id(ctx: Context) -> str:
    return Referrals(ctx.db).open_case_id(ctx.cid) or ""


def _open_case(ctx: Context) -> None:
    Referrals(ctx.db).open_case(ctx.cid, priority="request", channel="sms", language="pt")
    rota.heartbeat(ctx.db, "ana")  # a counsellor has the console open


def _retried_twice(ctx: Context) -> None:
    assert ctx.db.get(keys.SANDBOX_ATTEMPTS_KEY) == "3"


ROWS = [
    Row(
        "valid SMS",
        (Post("Hello, I want to go back home. Can you help me?"),),
        (200,),
        ("Hello, I want to go back home. Can you help me?",),
        (BOT_REPLY["en"],),
        after=_rasa_saw_only_the_pseudonym,
    ),
    Row(
        "valid WhatsApp",
        (Post("Hello, I want to go back home. Can you help me?"),),
        (200,),
        ("Hello, I want to go back home. Can you help me?",),
        (BOT_REPLY["en"],),
        channel="whatsapp",
        after=_whatsapp_reply_went_from_the_whatsapp_sender,
    ),
    Row(
        "bad signature",
        (Post("Hello, I want to go home", signature="bad"),),
        (403,),
        (),
        (),
        after=_nothing_stored,
    ),
    Row(
        "missing signature",
        (Post("Hello, I want to go home", signature=None),),
        (403,),
        (),
        (),
        after=_nothing_stored,
    ),
    Row(
        "duplicate MessageSid",
        (
            Post("I need help with my passport", sid="SMdup1"),
            Post("I need help with my passport", sid="SMdup1"),
        ),
        (200, 200),
        ("I need help with my passport",),
        (BOT_REPLY["en"],),
        together=True,
    ),
    # Twilio's retry of a webhook carries the same I-Twilio-Idempotency-Token.
    Row(
        "retried with idempotency token",
        (
            Post("I need help with my passport", token="tok-1"),
            Post("I need help with my passport", token="tok-1"),
        ),
        (200, 200),
        ("I need help with my passport",),
        (BOT_REPLY["en"],),
        together=True,
    ),
    Row(
        "media only",
        (Post("", media=1), Post("", media=2)),
        (200, 200),
        (),
        (note("media_only", "pt"),),
    ),
    Row("empty body", (Post(""),), (200,), (), (note("media_only", "pt"),)),
    Row(
        "1,601 characters",
        (Post(LONG),),
        (200,),
        (twilio_adapter.cut(LONG),),
        (joined(note("truncated", "pt"), BOT_REPLY["pt"]),),
    ),
    Row("70 KB", (Post(size=70 * 1024),), (413,), (), (), after=_nothing_stored),
    Row("emoji and accents", (Post(ACCENTS),), (200,), (ACCENTS,), (BOT_REPLY["pt"],)),
    Row(
        "STOP then a message",
        (Post("STOP"), Post("Are you still there? I need help")),
        (200, 200),
        (),
        (note("opted_out", "pt"),),
        after=_opted_out,
    ),
    Row(
        "START",
        (Post("PARAR"), Post("COMEÇAR"), Post("I want to go home, can you help me?")),
        (200, 200, 200),
        ("I want to go home, can you help me?",),
        (note("opted_out", "pt"), note("opted_in", "pt"), BOT_REPLY["en"]),
        after=_opted_in,
    ),
    Row(
        "status delivered",
        (Post("Hello, I need some information please"),),
        (200,),
        ("Hello, I need some information please",),
        (BOT_REPLY["en"],),
        after=_record_reaches("delivered"),
    ),
    Row(
        "status failed",
        (Post("Hello, I need some information please"),),
        (200,),
        ("Hello, I need some information please",),
        (BOT_REPLY["en"],),
        before=lambda ctx: ctx.sandbox("/sandbox/unreachable", number=NUMBER),
        after=_record_reaches("undelivered", "30003"),
    ),
    Row(
        "21610 on send",
        (Post("Hello, I want to go back home"), Post("Hello? Are you there?")),
        (200, 200),
        ("Hello, I want to go back home",),
        (),
        before=lambda ctx: ctx.sandbox("/sandbox/optout", number=NUMBER),
        after=_refused_with_21610,
    ),
    # Beyond the required rows: the rest of what the channel promises a person.
    Row("HELP in Swahili", (Post("msaada"),), (200,), (), (note("help", "sw"),)),
    Row(
        "language pick",
        (Post("Français"), Post("ok")),
        (200, 200),
        ("ok",),
        (note("language_set", "fr"), BOT_REPLY["fr"]),
    ),
    Row(
        "DELETE then YES",
        (Post("Hello, I want to go back home"), Post("APAGAR"), Post("sim")),
        (200, 200, 200),
        ("Hello, I want to go back home",),
        (BOT_REPLY["en"], note("delete_confirm", "pt"), note("delete_done", "pt")),
        after=_erased,
    ),
    Row(
        "DELETE then something else",
        (Post("DELETE"), Post("how do I get a new passport?")),
        (200, 200),
        ("how do I get a new passport?",),
        (note("delete_confirm", "en"), joined(note("delete_cancelled", "en"), BOT_REPLY["en"])),
    ),
    Row(
        "Rasa down: one note, answered when back",
        (Post("Hello, I want to go back home"), Post("Are you there? Please answer me")),
        (200, 200),
        ("Hello, I want to go back home", "Are you there? Please answer me"),
        (joined(note("received_will_answer", "en"), BOT_REPLY["en"], BOT_REPLY["en"]),),
        together=True,
        rasa_down_for=1.5,
    ),
    Row(
        "open case: the counsellor gets it, the bot is silent, the person is told",
        (Post(ACCENTS),),
        (200,),
        (),
        (handoff_text("utter_waiting_ack", "pt"),),
        before=_open_case,
        after=_relayed_to_case,
    ),
    Row(
        "Twilio 503 twice, then sent",
        (Post("Hello, I want to go back home"),),
        (200,),
        ("Hello, I want to go back home",),
        (BOT_REPLY["en"],),
        before=lambda ctx: ctx.sandbox("/sandbox/faults", status=503, count=2),
        after=_retried_twice,
    ),
    Row(
        "the bot's two messages in one SMS",
        (Post("Hello, I want to go back home"),),
        (200,),
        ("Hello, I want to go back home",),
        (joined("First part.", "Second part."),),
        rasa_replies=lambda body: ["First part.", "Second part."],
    ),
]


def _post(phone: Phone, post: Post) -> httpx.Response:
    if post.size is not None:
        return phone.post(phone.form(""), raw=b"Body=" + b"x" * post.size)
    form = phone.form(post.body, sid=post.sid, media=post.media)
    return phone.post(form, signature=post.signature, token=post.token)


def _no_number_at_rest(db: redis.Redis) -> None:
    """Outside the sandbox (which plays Twilio), Redis never holds the number in clear."""
    digits = NUMBER.lstrip("+")
    for key in db.scan_iter():
        if key.startswith("sandbox:"):
            continue
        kind = db.type(key)
        if kind == "string":
            values = [db.get(key)]
        elif kind == "hash":
            values = list(db.hgetall(key).values())
        elif kind == "list":
            values = db.lrange(key, 0, -1)
        elif kind == "stream":
            values = [v for _, fields in db.xrange(key) for v in fields.values()]
        else:
            values = []
        assert not any(digits in str(v) for v in values), f"{key} holds the phone number"


def _assert_logs_clean(caplog: pytest.LogCaptureFixture, texts: list[str]) -> None:
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (NUMBER, NUMBER.lstrip("+"), "840000001", AUTH_TOKEN, FERNET_KEY, SECRET):
        assert secret not in logged, "a phone number or secret reached the logs"
    for text in texts:
        probe = text.strip()[:40]
        if len(probe) >= 5:
            assert probe not in logged, f"a message text reached the logs: {probe!r}"


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_channel(
    row: Row, servers: Servers, db: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = servers.settings
    ctx = Context(servers, db, Phone(servers, NUMBER, row.channel), FakeRasa())
    ctx.rasa.replies = row.rasa_replies
    if row.before:
        row.before(ctx)

    statuses = []
    if row.together:
        statuses = [_post(ctx.phone, post).status_code for post in row.posts]
        _no_number_at_rest(db)
        if row.rasa_down_for:
            ctx.rasa.down = True
            import threading

            threading.Timer(row.rasa_down_for, lambda: setattr(ctx.rasa, "down", False)).start()
        run_worker(settings, ctx.rasa)
        run_sender(settings)
    else:
        for post in row.posts:
            statuses.append(_post(ctx.phone, post).status_code)
            _no_number_at_rest(db)
            run_worker(settings, ctx.rasa)
            run_sender(settings)

    assert tuple(statuses) == row.statuses
    assert tuple(ctx.rasa.texts) == row.rasa_saw
    assert tuple(ctx.phone.received()) == row.replies
    if row.after:
        row.after(ctx)
    _no_number_at_rest(db)
    _assert_logs_clean(caplog, [p.body for p in row.posts] + list(row.replies))
