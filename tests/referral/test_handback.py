"""Closing a case is the hand-back: one closing line in the person's language, nothing from Rasa."""

from __future__ import annotations

import redis

from hotline import conversations, keys
from hotline.conversations import OUTBOUND_STREAM
from referral import handback, waiting
from referral.queue import Referrals
from referral.texts import text


def claimed_case(referrals: Referrals, language: str = "pt") -> str:
    case_id = referrals.open_case("c1", priority="high", channel="sms", language=language).case_id
    referrals.claim(case_id, "ana")
    return case_id


def test_closing_sends_one_closing_line_in_the_persons_language_and_gives_the_bot_back(
    db: redis.Redis,
) -> None:
    referrals = Referrals(db)
    case_id = claimed_case(referrals, "pt")
    # The person wrote in Swahili since the case opened: the closing line follows them.
    conversations.set_language(db, "c1", "sw")

    case = handback.close_and_hand_back(
        referrals, case_id, "ana", "referred_child_protection", "called 116 with her"
    )

    closing = text("utter_case_closed", "sw")
    assert case.outcome == "referred_child_protection"
    sent = [fields for _, fields in db.xrange(OUTBOUND_STREAM)]
    assert [(f["conversation_id"], f["text"], f.get("case_id")) for f in sent] == [
        ("c1", closing, case_id)
    ]
    # The counsellor sees what the person was told, last in the transcript.
    last = referrals.get(case_id).transcript[-1]
    assert (last.author, last.text) == ("system", closing)
    # The next message goes to the bot: no open case for the conversation.
    assert referrals.open_case_id("c1") is None


def test_closing_ends_a_step_back_to_the_bot_and_the_waiting_notes(db: redis.Redis) -> None:
    referrals = Referrals(db)
    case_id = claimed_case(referrals)
    with db.pipeline(transaction=True) as pipe:
        waiting.step_back(pipe, "c1", case_id)
        pipe.execute()
    db.set(keys.waiting_ack("c1"), "1", ex=600)

    handback.close_and_hand_back(referrals, case_id, "ana", "information_given")

    assert not waiting.with_bot(db, "c1", case_id)
    assert not db.exists(keys.waiting_ack("c1"))
