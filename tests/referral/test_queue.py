"""The referral queue against a real Redis: one case per conversation, atomic claims, order, audit."""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from hotline import keys
from hotline.conversations import OUTBOUND_STREAM, outbound_fields
from referral import queue
from referral.queue import (
    OUTCOMES,
    AlreadyClaimed,
    CaseClosed,
    CaseNotFound,
    NotYourCase,
    OptedOut,
    ReferralError,
    Referrals,
    record_outgoing,
)


class Clock:
    """A clock the test moves, so 'oldest first' does not depend on the machine's speed."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += 1.0
            return self.now


@pytest.fixture
def referrals(db: redis.Redis) -> Referrals:
    return Referrals(db, clock=Clock())


def open_case(referrals: Referrals, cid: str, priority: str = "high", **kw):
    defaults = {"channel": "sms", "language": "pt", "risk_level": "high", "consent": "given"}
    return referrals.open_case(cid, priority=priority, **{**defaults, **kw})


def test_opening_twice_updates_the_open_case_and_never_makes_a_twin(referrals: Referrals) -> None:
    first = open_case(referrals, "c1", "request", risk_level="none", consent="requested")
    second = open_case(referrals, "c1", "emergency", risk_level="emergency", consent="not_asked")
    assert first.created and not second.created
    assert second.case_id == first.case_id
    case = referrals.get(first.case_id)
    assert case.priority == "emergency"  # raised
    assert case.risk_level == "emergency"
    assert [c.id for c in referrals.list_waiting()] == [first.case_id]
    # A later, lesser trigger never lowers the priority.
    third = open_case(referrals, "c1", "request", risk_level="none")
    assert third.priority == "emergency"
    assert referrals.get(first.case_id).priority == "emergency"


def test_200_concurrent_opens_for_50_conversations_make_exactly_50_cases(
    db: redis.Redis, referrals: Referrals
) -> None:
    conversations = [f"c{n:02d}" for n in range(50)]
    jobs = [conversations[n % 50] for n in range(200)]
    priorities = ["request", "high", "emergency", "high"]

    def opener(index_and_cid: tuple[int, str]):
        index, cid = index_and_cid
        # Each thread its own client, as separate workers would have.
        mine = Referrals(redis.Redis.from_url(_url(db), decode_responses=True))
        return open_case(mine, cid, priorities[index % 4])

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(opener, enumerate(jobs)))

    created = [r for r in results if r.created]
    assert len(created) == 50
    per_conversation = {}
    for cid, result in zip(jobs, results, strict=False):
        per_conversation.setdefault(cid, set()).add(result.case_id)
    assert all(len(ids) == 1 for ids in per_conversation.values())
    assert len(referrals.list_waiting()) == 50
    assert len(db.keys(keys.case("R*[0-9]"))) == 50


def _url(db: redis.Redis) -> str:
    kwargs = db.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def test_20_concurrent_claims_have_one_winner_and_the_others_are_told_who(
    db: redis.Redis, referrals: Referrals
) -> None:
    case_id = open_case(referrals, "c1").case_id
    barrier = threading.Barrier(20)

    def claim(n: int) -> str:
        mine = Referrals(redis.Redis.from_url(_url(db), decode_responses=True))
        barrier.wait()
        try:
            mine.claim(case_id, f"counsellor{n}")
            return "won"
        except AlreadyClaimed as lost:
            return f"lost to {lost.claimed_by}"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(claim, range(20)))
    assert outcomes.count("won") == 1
    winner = referrals.get(case_id).claimed_by
    assert Counter(outcomes)[f"lost to {winner}"] == 19
    assert [e.action for e in referrals.audit(case_id)].count("claimed") == 1


def test_waiting_cases_come_emergency_then_high_then_requests_oldest_first(
    referrals: Referrals,
) -> None:
    request_old = open_case(referrals, "a", "request").case_id
    high_old = open_case(referrals, "b", "high").case_id
    emergency = open_case(referrals, "c", "emergency").case_id
    high_new = open_case(referrals, "d", "high").case_id
    request_new = open_case(referrals, "e", "request").case_id
    # A request that becomes an emergency moves up, keeping its place by age.
    raised = open_case(referrals, "a", "emergency").case_id
    assert raised == request_old
    assert [c.id for c in referrals.list_waiting()] == [
        request_old,
        emergency,
        high_old,
        high_new,
        request_new,
    ]

    referrals.claim(emergency, "ana")
    assert [c.id for c in referrals.list_waiting()] == [
        request_old,
        high_old,
        high_new,
        request_new,
    ]
    assert [c.id for c in referrals.list_open()][-1] == emergency
    assert [c.id for c in referrals.list_mine("ana")] == [emergency]


def test_the_same_counsellor_claiming_again_is_not_an_error(referrals: Referrals) -> None:
    case_id = open_case(referrals, "c1").case_id
    referrals.claim(case_id, "ana")
    assert referrals.claim(case_id, "ana").claimed_by == "ana"


def test_relay_reply_note_transfer_and_close_with_a_full_audit_trail(
    db: redis.Redis, referrals: Referrals
) -> None:
    opened = referrals.open_case(
        "c1",
        priority="high",
        channel="whatsapp",
        language="sw",
        risk_level="high",
        indicators=[
            {
                "name": "documents_confiscated",
                "message_index": 1,
                "phrase": "ameshika pasipoti yangu",
            }
        ],
        summary="hati zimechukuliwa",
        consent="given",
        trigger="affirm",
        transcript=[
            (10.0, "person", "habari"),
            (11.0, "bot", "Habari!"),
            (12.0, "person", "bosi ameshika pasipoti yangu"),
        ],
    )
    case_id = opened.case_id
    assert referrals.open_case_id("c1") == case_id
    referrals.append_message(case_id, author="person", text="niko Pretoria", actor="person")

    with pytest.raises(NotYourCase, match="claim it first"):
        referrals.reply(case_id, "ana", "Habari, mimi ni Ana")
    referrals.claim(case_id, "ana")
    with pytest.raises(NotYourCase, match="claimed by ana"):
        referrals.reply(case_id, "ben", "hello")
    referrals.reply(case_id, "ana", "Habari, mimi ni Ana. Uko salama sasa?")
    referrals.note(case_id, "ana", "asked about safety first")
    referrals.transfer(case_id, "ana", "ben")
    assert referrals.get(case_id).claimed_by == "ben"
    assert referrals.list_mine("ana") == []
    referrals.transfer(case_id, "ben", None)  # back to the queue
    assert [c.id for c in referrals.list_waiting()] == [case_id]
    referrals.claim(case_id, "carla")
    closed = referrals.close(case_id, "carla", "referred_legal", note="gave the legal aid number")

    assert (
        closed.status == "closed"
        and closed.outcome == "referred_legal"
        and closed.closed_by == "carla"
    )
    assert referrals.open_case_id("c1") is None  # the next message goes to the bot
    assert referrals.list_open() == []
    case = referrals.get(case_id)
    assert [(m.author, m.kind, m.text) for m in case.transcript] == [
        ("person", "message", "habari"),
        ("bot", "message", "Habari!"),
        ("person", "message", "bosi ameshika pasipoti yangu"),
        ("person", "message", "niko Pretoria"),
        ("counsellor", "message", "Habari, mimi ni Ana. Uko salama sasa?"),
        ("counsellor", "note", "asked about safety first"),
        ("counsellor", "note", "gave the legal aid number"),
    ]
    assert case.consent == "given" and case.indicators[0]["name"] == "documents_confiscated"

    trail = referrals.audit(case_id)
    assert [(e.actor, e.action) for e in trail] == [
        ("bot", "opened"),
        ("person", "message_received"),
        ("ana", "claimed"),
        ("ana", "replied"),
        ("ana", "noted"),
        ("ana", "transferred"),
        ("ben", "transferred"),
        ("carla", "claimed"),
        ("carla", "closed"),
    ]
    assert trail[0].detail["consent"] == "given"
    assert trail[5].detail == {"from": "ana", "to": "ben"}
    assert trail[-1].detail["outcome"] == "referred_legal"
    assert all(later.at > earlier.at for earlier, later in itertools.pairwise(trail))

    # Only the reply went out, on the person's conversation, marked as the counsellor's.
    sent = db.xrange(OUTBOUND_STREAM)
    assert [(f["conversation_id"], f["text"], f["source"], f["case_id"]) for _, f in sent] == [
        ("c1", "Habari, mimi ni Ana. Uko salama sasa?", "counsellor", case_id)
    ]
    # The reply script writes exactly what the channels queue for the sender, with the ref
    # of the transcript line it is, so the console can show how far it got.
    line = next(m for m in referrals.get(case_id).transcript if m.author == "counsellor")
    assert line.ref and line.delivery is not None and line.delivery.status == "queued"
    assert [f for _, f in sent] == [
        outbound_fields(
            "c1",
            "Habari, mimi ni Ana. Uko salama sasa?",
            source="counsellor",
            case_id=case_id,
            ref=line.ref,
        )
    ]


def test_a_closed_case_takes_no_more_messages_and_cannot_be_closed_twice(
    referrals: Referrals,
) -> None:
    case_id = open_case(referrals, "c1").case_id
    referrals.close(case_id, "ana", "information_given")
    with pytest.raises(CaseClosed):
        referrals.append_message(case_id, text="still there?")
    with pytest.raises(CaseClosed):
        referrals.close(case_id, "ana", "declined")
    with pytest.raises(CaseClosed):
        referrals.claim(case_id, "ben")
    # After the close, a new trigger opens a new case.
    again = open_case(referrals, "c1", "request")
    assert again.created and again.case_id != case_id
    assert referrals.cases_of("c1") == [case_id, again.case_id]


def test_outcome_codes_are_checked(referrals: Referrals) -> None:
    case_id = open_case(referrals, "c1").case_id
    with pytest.raises(ReferralError, match="outcome must be one of"):
        referrals.close(case_id, "ana", "solved")
    assert len(OUTCOMES) == 10
    with pytest.raises(CaseNotFound):
        referrals.claim("R999", "ana")


def test_a_second_trigger_adds_only_the_new_part_of_the_transcript(referrals: Referrals) -> None:
    open_case(referrals, "c1", transcript=[(1.0, "person", "ola"), (2.0, "bot", "Olá!")])
    case_id = open_case(
        referrals,
        "c1",
        "emergency",
        transcript=[(1.0, "person", "ola"), (2.0, "bot", "Olá!"), (3.0, "person", "socorro")],
    ).case_id
    assert [m.text for m in referrals.get(case_id).transcript] == ["ola", "Olá!", "socorro"]


def test_every_state_survives_a_redis_restart(
    redis_server, db: redis.Redis, referrals: Referrals
) -> None:
    waiting = open_case(
        referrals, "w", "request", transcript=[(1.0, "person", "preciso de ajuda")]
    ).case_id
    claimed = open_case(referrals, "c", "emergency").case_id
    referrals.claim(claimed, "ana")
    referrals.reply(claimed, "ana", "Estou aqui")
    closed = open_case(referrals, "x", "high").case_id
    referrals.claim(closed, "ben")
    referrals.close(closed, "ben", "referred_shelter")
    before = {case_id: referrals.get(case_id) for case_id in (waiting, claimed, closed)}
    trails = {case_id: referrals.audit(case_id) for case_id in before}

    redis_server.restart()

    after = Referrals(redis.Redis.from_url(redis_server.url, decode_responses=True))
    assert {case_id: after.get(case_id) for case_id in before} == before
    assert {case_id: after.audit(case_id) for case_id in before} == trails
    assert [c.id for c in after.list_waiting()] == [waiting]
    assert [c.id for c in after.list_mine("ana")] == [claimed]
    assert after.open_case_id("c") == claimed and after.open_case_id("x") is None
    # Ids keep counting after the restart: no case is ever overwritten.
    assert int(open_case(after, "new").case_id[1:]) > max(int(c[1:]) for c in before)


def _clients(db: redis.Redis, n: int) -> list[Referrals]:
    return [
        Referrals(redis.Redis.from_url(_url(db), decode_responses=True), clock=Clock())
        for _ in range(n)
    ]


def test_replies_racing_a_close_are_sent_exactly_when_they_are_in_the_transcript(
    db: redis.Redis,
) -> None:
    """A reply is in the transcript and on its way to the person, or neither: never one of them."""
    referrals = Referrals(db, clock=Clock())
    case_id = open_case(referrals, "c1").case_id
    referrals.claim(case_id, "ana")
    workers = _clients(db, 8)

    def reply(n: int) -> str | None:
        if n == 40:
            workers[n % 8].close(case_id, "ana", "information_given")
            return None
        try:
            workers[n % 8].reply(case_id, "ana", f"mensagem {n}")
        except CaseClosed:
            return None
        return f"mensagem {n}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = {text for text in pool.map(reply, range(80)) if text}

    in_case = {m.text for m in referrals.get(case_id).transcript if m.author == "counsellor"}
    sent = {f["text"] for _, f in db.xrange(OUTBOUND_STREAM)}
    assert accepted and in_case == sent == accepted
    replied = [e for e in referrals.audit(case_id) if e.action == "replied"]
    assert len(replied) == len(accepted)
    assert referrals.audit(case_id)[-1].action == "closed"


def test_concurrent_transfers_leave_the_case_in_exactly_its_holders_list(db: redis.Redis) -> None:
    """The holder's list is a key the transfer script is given, read just before: a holder
    changed meanwhile must not leave the case in two counsellors' lists."""
    referrals = Referrals(db, clock=Clock())
    case_id = open_case(referrals, "c1").case_id
    referrals.claim(case_id, "ana")
    names = ["ana", "ben", "carla", "dino", None]
    workers = _clients(db, 8)

    def transfer(n: int) -> None:
        workers[n % 8].transfer(case_id, "supervisor", names[n % len(names)])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(transfer, range(100)))

    case = referrals.get(case_id, transcript=False)
    holders = {name for name in names if name and case_id in db.zrange(keys.mine(name), 0, -1)}
    assert holders == ({case.claimed_by} if case.claimed_by else set())
    waiting = case_id in db.zrange(keys.waiting("high"), 0, -1)
    claimed = case_id in db.zrange(keys.CLAIMED_KEY, 0, -1)
    assert (waiting, claimed) == ((False, True) if case.claimed_by else (True, False))
    assert sum(e.action == "transferred" for e in referrals.audit(case_id)) == 100


# ---------------------------------------------------------------- issue 11: the queue's side


def test_within_a_priority_an_elevated_request_waits_ahead_of_a_plain_one(
    referrals: Referrals,
) -> None:
    plain_old = open_case(referrals, "a", "request", risk_level="none").case_id
    elevated = open_case(referrals, "b", "request", risk_level="elevated").case_id
    plain_new = open_case(referrals, "c", "request", risk_level="none").case_id
    high = open_case(referrals, "d", "high", risk_level="high").case_id
    elevated_new = open_case(referrals, "e", "request", risk_level="elevated").case_id
    emergency = open_case(referrals, "f", "emergency", risk_level="emergency").case_id
    assert [c.id for c in referrals.list_waiting()] == [
        emergency,
        high,
        elevated,
        elevated_new,
        plain_old,
        plain_new,
    ]
    assert [c.id for c in referrals.list_waiting(limit=3)] == [emergency, high, elevated]
    assert referrals.count("waiting") == 6

    # A plain request whose conversation turns risky moves up among the requests, by age.
    open_case(referrals, "c", "request", risk_level="elevated")
    assert [c.id for c in referrals.list_waiting()][2:] == [
        elevated,
        plain_new,
        elevated_new,
        plain_old,
    ]
    # Taken and given back, an elevated request keeps its place ahead of the plain one.
    referrals.claim(elevated, "ana")
    referrals.transfer(elevated, "ana", None)
    assert [c.id for c in referrals.list_waiting()][2:] == [
        elevated,
        plain_new,
        elevated_new,
        plain_old,
    ]


def _opted_out(db: redis.Redis, cid: str) -> None:
    db.hset(keys.conversation(cid), "opted_out", "1")


def test_a_reply_to_a_person_who_texted_stop_is_refused_and_never_queued(
    db: redis.Redis, referrals: Referrals
) -> None:
    case_id = open_case(referrals, "c1").case_id
    referrals.claim(case_id, "ana")
    _opted_out(db, "c1")
    with pytest.raises(OptedOut) as refused:
        referrals.reply(case_id, "ana", "Ola, estou aqui")
    assert "texted STOP" in str(refused.value) and "START" in str(refused.value)
    assert refused.value.case_id == case_id
    assert not [m for m in referrals.get(case_id).transcript if m.author == "counsellor"]
    assert db.xlen(OUTBOUND_STREAM) == 0
    assert "replied" not in [e.action for e in referrals.audit(case_id)]
    # Once they write START again (the flag goes), the reply goes out.
    db.hdel(keys.conversation("c1"), "opted_out")
    referrals.reply(case_id, "ana", "Ola, estou aqui")
    assert db.xlen(OUTBOUND_STREAM) == 1


def test_a_counsellors_reply_brings_a_person_back_from_the_bot(
    db: redis.Redis, referrals: Referrals
) -> None:
    case_id = open_case(referrals, "c1").case_id
    referrals.claim(case_id, "ana")
    db.hset(keys.conversation("c1"), mapping={"with_bot": "1", "language": "pt"})
    referrals.reply(case_id, "ana", "Ola")
    assert db.hgetall(keys.conversation("c1")) == {"language": "pt"}


def test_the_bots_text_joins_the_transcript_and_the_outbound_stream_in_one_transaction(
    db: redis.Redis, referrals: Referrals
) -> None:
    case_id = open_case(referrals, "c1", transcript=[(5.0, "person", "socorro")]).case_id
    with db.pipeline(transaction=True) as pipe:
        pipe.watch(keys.open_case("c1"))  # as the router does, to route on what it read
        assert pipe.get(keys.open_case("c1")) == case_id
        pipe.multi()
        pipe.hset(keys.conversation("c1"), "language", "pt")  # the router's own writes
        ref = record_outgoing(pipe, case_id, "Ligue 119 agora.", author="system", at=6.0)
        other = record_outgoing(
            pipe, case_id, "Uma pessoa tem a sua mensagem.", author="bot", at=7.0
        )
        assert db.xlen(OUTBOUND_STREAM) == 0  # nothing before EXEC
        results = pipe.execute()
    assert results[1][0] == "ok" and results[2][0] == "ok"
    lines = [m for m in referrals.get(case_id).transcript if m.author != "person"]
    assert [(m.author, m.kind, m.actor, m.text, m.at, m.ref) for m in lines] == [
        ("system", "message", "system", "Ligue 119 agora.", 6.0, ref),
        ("bot", "message", "bot", "Uma pessoa tem a sua mensagem.", 7.0, other),
    ]
    assert all(m.delivery is not None and m.delivery.status == "queued" for m in lines)
    assert [f for _, f in db.xrange(OUTBOUND_STREAM)] == [
        outbound_fields("c1", "Ligue 119 agora.", source="system", case_id=case_id, ref=ref),
        outbound_fields(
            "c1", "Uma pessoa tem a sua mensagem.", source="bot", case_id=case_id, ref=other
        ),
    ]
    # Open consoles see the new lines live; the trail says who wrote to the person.
    assert [f["action"] for _, f in db.xrange(keys.CHANGES_STREAM)][-2:] == ["sent", "sent"]
    assert [(e.actor, e.action) for e in referrals.audit(case_id)][-2:] == [
        ("system", "sent"),
        ("bot", "sent"),
    ]


def test_a_closed_case_takes_its_closing_line_and_an_erased_one_takes_nothing(
    db: redis.Redis, referrals: Referrals
) -> None:
    case_id = open_case(referrals, "c1").case_id
    referrals.claim(case_id, "ana")
    referrals.close(case_id, "ana", "information_given")
    closing = record_outgoing(db, case_id, "Obrigado, ate logo.", author="system", at=9.0)
    assert referrals.transcript(case_id)[-1].ref == closing

    # An erased case is never written again; the text still reaches the person.
    db.hset(keys.case(case_id), "erased_at", "10.0")
    lines = len(referrals.transcript(case_id))
    with db.pipeline(transaction=True) as pipe:
        record_outgoing(pipe, case_id, "Ola de novo", author="bot", at=11.0, conversation_id="c1")
        record_outgoing(pipe, "R999", "Nunca", author="bot", at=11.0)
        assert pipe.execute() == [["unrecorded"], ["missing"]]
    assert len(referrals.transcript(case_id)) == lines
    assert [f for _, f in db.xrange(OUTBOUND_STREAM)] == [
        outbound_fields("c1", "Obrigado, ate logo.", source="system", case_id=case_id, ref=closing),
        outbound_fields("c1", "Ola de novo", source="bot"),
    ]
    with pytest.raises(ValueError):
        record_outgoing(db, case_id, "x", author="counsellor", at=1.0)


def test_the_outgoing_script_gets_every_key_through_KEYS() -> None:
    """As tests/referral/test_keys.py holds for the other scripts."""
    assert not re.search(r"'[^']*:[^']*'", queue._OUTGOING)
    assert not re.findall(r"(\S+)\s*\.\.\s*(\S+)", queue._OUTGOING)
    assert all(family.prefix not in queue._OUTGOING for family in keys.FAMILIES.values())


def test_recent_lines_are_the_last_ones_in_time_order(db: redis.Redis) -> None:
    referrals = Referrals(db)
    case_id = referrals.open_case("c1", priority="request", channel="sms", language="pt").case_id
    for n in range(30):
        referrals.append_message(case_id, text=f"message {n}")
    assert [m.text for m in referrals.recent_lines(case_id, 3)] == [
        "message 27",
        "message 28",
        "message 29",
    ]
