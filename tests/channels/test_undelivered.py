"""What did not reach a person, as an operator sees it and acts on it: `hotline undelivered`
run as a process over the real sender, the sandbox's Twilio errors and its status callbacks
through the real gateway; and a Twilio outage reported once, with a count."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import httpx
import pytest
import redis

from hotline import conversations, ids, keys
from referral import failures
from referral.queue import Delivery, Referrals
from tests.channels.conftest import Phone, Servers, run_sender, service_env, wait_for
from tests.conftest import FERNET_KEY, SECRET

TEXT = "Ola, sou a Ana. Esta em seguranca?"


def _person(db: redis.Redis, phone: Phone, *, sealed: str | None = None) -> str:
    cid = ids.conversation_id(phone.address, SECRET)
    conversations.remember(
        db,
        cid,
        channel=phone.channel,  # type: ignore[arg-type]
        sealed_address=sealed or ids.seal(phone.address, FERNET_KEY),
    )
    return cid


def _case(db: redis.Redis, cid: str) -> tuple[Referrals, str]:
    referrals = Referrals(db)
    case_id = referrals.open_case(
        cid, priority="high", channel="sms", language="pt", risk_level="high"
    ).case_id
    referrals.claim(case_id, "ana")
    return referrals, case_id


def _sandbox(servers: Servers, control: str, number: str, on: bool = True) -> None:
    httpx.post(
        f"{servers.sandbox_url}/sandbox/{control}", json={"number": number, "on": on}, timeout=10
    ).raise_for_status()


def hotline(servers: Servers, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", "undelivered", *args],
        env=service_env(servers.settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _line_status(referrals: Referrals, case_id: str) -> list[Delivery | None]:
    return [m.delivery for m in referrals.transcript(case_id) if m.outgoing]


def test_an_operator_lists_each_failure_with_its_reason_and_sends_a_case_line_again(
    servers: Servers, db: redis.Redis
) -> None:
    off = Phone(servers, "+258840008001")  # a phone that is switched off: 30003
    _sandbox(servers, "unreachable", off.number)
    referrals, case_id = _case(db, _person(db, off))
    referrals.reply(case_id, "ana", TEXT)
    bot_only = Phone(servers, "+258840008002")  # a bot reply outside a case, also 30003
    _sandbox(servers, "unreachable", bot_only.number)
    conversations.queue_reply(db, _person(db, bot_only), "Posso ajudar.", source="bot")
    stopped = Phone(servers, "+258840008003")  # opted out at Twilio: refused with 21610
    _sandbox(servers, "optout", stopped.number)
    _, stopped_case = _case(db, _person(db, stopped))
    referrals.reply(stopped_case, "ana", "Ola")
    broken = Phone(servers, "+258840008004")  # an address that cannot be opened: dead letter
    _, broken_case = _case(db, _person(db, broken, sealed="not a sealed address"))
    referrals.reply(broken_case, "ana", "Ola de novo")

    run_sender(servers.settings)
    assert wait_for(lambda: db.zcard(keys.UNDELIVERED_KEY) == 3, timeout=10)

    listed = hotline(servers)
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    assert "undelivered replies: 3" in out and "dead letters: 1" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    by_case = {
        c: next(line for line in rows.values() if f"case {c} " in line)
        for c in (case_id, stopped_case, broken_case)
    }
    assert "twilio_30003: the phone is off or out of reach  [replayable]" in by_case[case_id]
    assert (
        "twilio_21610" in by_case[stopped_case]
        and "not replayable: opted_out" in (by_case[stopped_case])
    )
    assert (
        "outbound" in by_case[broken_case]
        and "sealed address cannot be opened" in (by_case[broken_case])
    )
    assert "not replayable: text_not_kept" in next(
        line for line in rows.values() if "case -" in line and "twilio_30003" in line
    )
    # Ids, codes and words only: no number, no text.
    assert not re.search(r"25884000800\d", out + listed.stderr)
    for text in (TEXT, "Posso ajudar.", "Ola de novo"):
        assert text not in out

    # The person's phone is on again; the operator sends the counsellor's line once more.
    _sandbox(servers, "unreachable", off.number, on=False)
    record_id = by_case[case_id].split()[0]
    again = hotline(servers, "replay", record_id)
    assert again.returncode == 0 and "queued 1 line(s) again" in again.stdout, again.stderr
    twice = hotline(servers, "replay", record_id)  # a second click finds nothing to do
    assert twice.returncode == 1 and "nothing undelivered" in twice.stderr
    run_sender(servers.settings)
    assert wait_for(lambda: _line_status(referrals, case_id) == [Delivery("delivered")], 10)
    assert off.received() == [TEXT, TEXT]  # the first never reached the phone; this one did

    # Not to a person who opted out, and not a text that was never kept.
    refused = hotline(servers, "replay", by_case[stopped_case].split()[0])
    assert refused.returncode == 1 and "opted_out" in refused.stderr
    bot_record = next(r for r, line in rows.items() if "case -" in line and "twilio_" in line)
    assert "text_not_kept" in hotline(servers, "replay", bot_record).stderr
    assert hotline(servers, "dismiss", bot_record).returncode == 0

    # The dead letter goes back once its address is repaired, by its id.
    conversations.remember(
        db,
        _person(db, broken),
        channel="sms",
        sealed_address=ids.seal(broken.address, FERNET_KEY),
    )
    dead_id = by_case[broken_case].split()[0]
    assert "replayed 1 dead letter(s)" in hotline(servers, "replay", dead_id).stdout
    run_sender(servers.settings)
    assert broken.received() == ["Ola de novo"]

    after = hotline(servers).stdout
    assert "undelivered replies: 1" in after and "dead letters: 0" in after  # the 21610 one
    assert [r.id for r in failures.list_undelivered(db)] == [by_case[stopped_case].split()[0]]


def test_a_twilio_outage_is_one_error_with_a_count_not_a_warning_per_retry(
    servers: Servers, db: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    phone = Phone(servers, "+258840008010")
    conversations.queue_reply(db, _person(db, phone), "Ola.", source="bot")
    httpx.post(f"{servers.sandbox_url}/sandbox/faults", json={"status": 503, "count": 12})
    caplog.set_level(logging.DEBUG, logger="channels.sender")
    run_sender(servers.settings, retry_first=0.02, retry_cap=0.05, outage_after=0.2)

    assert phone.received() == ["Ola."]  # delivered once, after the outage
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "channels.sender"]
    warnings = [m for level, m in lines if level == "WARNING"]
    errors = [m for level, m in lines if level == "ERROR"]
    assert warnings == ["Twilio did not take a request (HTTP 503); retrying with backoff"]
    assert len(errors) == 2, lines
    assert re.match(r"Twilio has failed \d+ requests over \d+s \(HTTP 503 x\d+\)", errors[0])
    assert errors[1].startswith("Twilio takes requests again after 12 failed over")
    assert "HTTP 503 x12" in errors[1]


def test_a_short_blip_is_one_warning_and_one_line_when_it_ends(
    servers: Servers, db: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    phone = Phone(servers, "+258840008011")
    conversations.queue_reply(db, _person(db, phone), "Ola.", source="bot")
    httpx.post(f"{servers.sandbox_url}/sandbox/faults", json={"status": 429, "count": 2})
    caplog.set_level(logging.INFO, logger="channels.sender")
    sender_options = {"retry_first": 0.02, "retry_cap": 0.05, "outage_after": 60.0}
    run_sender(servers.settings, **sender_options)
    assert phone.received() == ["Ola."]
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "channels.sender"]
    assert [level for level, _ in lines if level in ("WARNING", "ERROR")] == ["WARNING"]
    assert any("takes requests again after 2 failed" in m for _, m in lines)
