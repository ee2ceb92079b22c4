"""A person whose case is open: what they are told while they wait, and stepping back to the bot.

The conversation router (channels/router.py) asks this module; the texts are in data/handoff.yml.
Two pieces of state, both per conversation:
  keys.waiting_ack(cid)               set when the person was last told their message is with
                                      a person; it expires after ACK_INTERVAL
  `with_bot` in keys.conversation(cid)  the open case the person stepped back to the bot from
                                      (the back word); cleared by a counsellor's reply (the
                                      queue's reply script) or by asking for a person again
"""

from __future__ import annotations

import time

import redis

from hotline import keys
from hotline.conversations import Writer
from referral import rota
from referral.queue import Case
from referral.texts import text

# A person who keeps writing while nobody has answered is told again at most this often: each
# message gets no reply of its own, but twenty minutes of silence is long for someone at risk.
ACK_INTERVAL = 20 * 60
# A counsellor who wrote this recently is in the conversation: no note from the system.
ANSWERED_WITHIN = 20 * 60
WITH_BOT = "with_bot"


def with_bot(db: redis.Redis, conversation_id: str, case_id: str) -> bool:
    """Whether the person stepped back to the bot from this open case."""
    return db.hget(keys.conversation(conversation_id), WITH_BOT) == case_id


def step_back(pipe: Writer, conversation_id: str, case_id: str) -> None:
    pipe.hset(keys.conversation(conversation_id), WITH_BOT, case_id)


def return_to_case(db: Writer, conversation_id: str) -> None:
    """The person asked for a person again: their messages go to the open case."""
    db.hdel(keys.conversation(conversation_id), WITH_BOT)


def at_risk(case: Case) -> bool:
    return case.priority in ("emergency", "high") or case.risk_level in ("high", "emergency")


def answered_recently(case: Case, now: float) -> bool:
    """A counsellor wrote to the person in the last ANSWERED_WITHIN seconds."""
    return any(
        line.author == "counsellor" and line.kind == "message" and now - line.at < ANSWERED_WITHIN
        for line in case.transcript
    )


def acknowledgement(
    db: redis.Redis, case: Case, language: str, now: float | None = None
) -> list[str]:
    """What to tell a person who wrote into their open case: [] when they need nothing.

    Nothing when a counsellor is talking with them or they were told less than ACK_INTERVAL
    ago. Otherwise that a person has the message and when someone will answer; off duty and
    at risk, with the numbers that answer at that hour (the danger numbers, which leave out
    Linha Verde 1458: it is closed when nobody is on duty). The caller sets the interval key.
    """
    now = time.time() if now is None else now
    if db.exists(keys.waiting_ack(case.conversation_id)) or answered_recently(case, now):
        return []
    if rota.on_duty(db, now):
        return [text("utter_waiting_ack", language)]
    shift = rota.next_shift(now, language)
    texts = [text("utter_waiting_ack_off_duty", language, next_shift=shift)]
    if at_risk(case):
        texts.append(text("utter_danger_numbers", language))
    return texts
