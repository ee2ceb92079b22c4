"""A person's text never reaches Rasa as one of its commands ("/restart", "/intent@1{...}")."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from hotline import keys
from hotline.rasa import RasaClient, ordinary_text
from ops import triage


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("/restart", "restart"),
        ("/child_alone@1", "child_alone@1"),
        ('/report_exploitation{"risk_level": "none"}', 'report_exploitation{"risk_level": "none"}'),
        ("  /restart", "restart"),
        ("\u3000\u00a0/restart", "restart"),  # ideographic and no-break spaces: Rasa strips them
        ("\n\t/ /restart", "restart"),
        ("//restart", "restart"),
        ("\uff0frestart", "restart"),  # full-width solidus, which NFKC folds to "/"
        ("\u2215session_start", "session_start"),
        ("/ ajuda por favor", "ajuda por favor"),
    ],
)
def test_a_leading_slash_leaves_the_words_and_no_command(sent: str, read: str) -> None:
    assert ordinary_text(sent) == read
    # Rasa strips the text and then looks for "/" at its start.
    assert not ordinary_text(sent).strip().startswith("/")


@pytest.mark.parametrize(
    "text",
    [
        "ola, preciso de ajuda",
        "o meu patrao/chefe guardou o passaporte",
        "24/7?",
        "",
        "   ",
    ],
)
def test_ordinary_texts_pass_unchanged(text: str) -> None:
    assert ordinary_text(text) == text


def test_a_text_of_only_slashes_keeps_them_as_ordinary_characters() -> None:
    for sent in ("/", " // ", "/ /"):
        read = ordinary_text(sent)
        assert read and "/" not in read


# ---------------------------------------------------------------- through the real Rasa server


def _user_texts(tracker: dict) -> list[str]:
    return [e.get("text") for e in tracker.get("events") or [] if e.get("event") == "user"]


def test_restart_sent_by_a_person_leaves_the_conversation_in_place(rasa_stack) -> None:
    rasa = RasaClient(rasa_stack["settings"])
    sender = f"c{uuid.uuid4().hex[:31]}"
    metadata = {"language": "pt", "channel": "sms"}

    async def conversation() -> tuple[dict, dict]:
        try:
            await rasa.send(sender, "o patrao guardou o meu passaporte e nao me paga", metadata)
            before = await rasa.tracker(sender)
            await rasa.send(sender, "/restart", metadata)
            return before, await rasa.tracker(sender)
        finally:
            await rasa.aclose()

    before, after = asyncio.run(conversation())

    kinds = [e["event"] for e in after["events"]]
    assert "restart" not in kinds
    # Everything the tracker held before is still there, the earlier message included.
    assert after["events"][: len(before["events"])] == before["events"]
    assert _user_texts(after) == ["o patrao guardou o meu passaporte e nao me paga", "restart"]
    # The risk the first message carried is not reset by the second.
    assert after["slots"].get("risk_level") == before["slots"].get("risk_level")


def test_a_slash_intent_is_not_forced_at_full_confidence(rasa_stack) -> None:
    rasa = RasaClient(rasa_stack["settings"])

    async def read(text: str) -> dict:
        try:
            return await rasa.parse(text)
        finally:
            await rasa.aclose()

    parsed = asyncio.run(read('/child_alone@1{"risk_level": "high"}'))
    assert not parsed["text"].startswith("/")
    assert parsed["entities"] == []
    assert not (parsed["intent"]["name"] == "child_alone" and parsed["intent"]["confidence"] == 1)


def test_triage_reads_a_slash_intent_as_production_does(rasa_stack) -> None:
    """ops.triage posts to /model/parse itself; the text goes through the same neutraliser."""
    params = {"token": "test-rasa-token"}
    with httpx.Client(base_url=rasa_stack["rasa_url"], params=params, timeout=60) as client:
        turn = triage.parse(client, "/child_alone@1")
        plain = triage.parse(client, "child_alone@1")
    assert turn.intents == plain.intents
    assert turn.intents.get("child_alone", 0.0) < 1.0


def test_rasa_keeps_a_tracker_no_longer_than_the_retention_period(rasa_stack, db) -> None:
    retention = rasa_stack["settings"].retention_days * 86400
    rasa = RasaClient(rasa_stack["settings"])
    sender = f"c{uuid.uuid4().hex[:31]}"

    async def talk() -> None:
        try:
            await rasa.send(sender, "ola", {"language": "pt", "channel": "sms"})
        finally:
            await rasa.aclose()

    asyncio.run(talk())
    assert retention - 60 < db.ttl(keys.tracker(sender)) <= retention


def test_a_turn_cut_short_leaves_no_text_in_rasas_log(rasa_stack) -> None:
    """Rasa 3.6 logs the whole message when a client gives up on a turn; our logging config
    silences that logger (ops/rasa_logging.yml), so the words never reach a log file."""
    import time

    from hotline.settings import PROJECT_ROOT

    words = f"quero voltar para casa zebra{uuid.uuid4().hex[:8]}"
    sender = f"c{uuid.uuid4().hex[:31]}"
    body = {"sender": sender, "message": words, "metadata": {"language": "pt"}}
    with pytest.raises(httpx.TimeoutException):
        # Gives up long before Rasa answers: Sanic cancels the turn, the timeout path.
        httpx.post(f"{rasa_stack['rasa_url']}/webhooks/rest/webhook", json=body, timeout=0.001)
    time.sleep(3)
    logs = [rasa_stack["rasa"].log, PROJECT_ROOT / "var" / "log" / "rasa.log"]
    for path in logs:
        if path.exists():
            assert words not in path.read_text(errors="replace"), path
