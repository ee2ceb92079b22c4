"""Closing a case gives the conversation back to the bot: resume in Rasa, one closing line."""

from __future__ import annotations

import logging

import httpx

from hotline import conversations, keys
from hotline.rasa import RasaClient, RasaUnavailable
from referral.queue import Case, Referrals

log = logging.getLogger(__name__)

# Conversations whose case is closed but whose bot is still paused because Rasa did not
# answer; `resume_pending` (run by the launcher on a timer) finishes them.
RESUME_PENDING = keys.RESUME_PENDING_KEY
# An action, not a response: the text lives in data/handoff.yml with the other texts only
# actions choose, and Rasa refuses to execute a response it does not know.
CLOSING_ACTION = "action_case_closed"


async def close_and_resume(
    referrals: Referrals,
    rasa: RasaClient,
    case_id: str,
    counsellor: str,
    outcome: str,
    note: str | None = None,
) -> Case:
    """Record the outcome, resume the bot and send the person one closing line in their language.

    The case is closed even if Rasa is down at that moment; the resume is then retried by
    `resume_pending`, and until it succeeds the person's messages reach a paused bot.
    """
    case = referrals.close(case_id, counsellor, outcome, note)
    await resume(referrals, rasa, case)
    return case


async def resume(referrals: Referrals, rasa: RasaClient, case: Case) -> bool:
    """Unpause the conversation in Rasa and queue the closing line; False if Rasa did not answer."""
    db = referrals.db
    cid = case.conversation_id
    try:
        await rasa.append_events(cid, [{"event": "resume"}])
        # A message after the close goes to the bot again: the worker finds no open case, and
        # the "resume" event also starts a new risk window (actions/conversation.py).
        messages = await rasa.execute(cid, CLOSING_ACTION)
        # The execute API runs the action but does not listen afterwards; without this the
        # person's next message follows "action_case_closed" in the tracker, no rule matches
        # it and the bot answers "sorry, I did not understand".
        await rasa.append_events(cid, [{"event": "action", "name": "action_listen"}])
    except (RasaUnavailable, httpx.HTTPError) as error:
        db.sadd(RESUME_PENDING, case.id)
        log.warning(
            "case %s closed but the bot could not be resumed yet (%s)",
            case.id,
            type(error).__name__,
        )
        return False
    now = f"{referrals.clock():.6f}"
    with db.pipeline(transaction=True) as pipe:
        for message in messages:
            if message.get("text"):
                conversations.queue_reply(pipe, cid, message["text"], source="bot")
        pipe.srem(RESUME_PENDING, case.id)
        pipe.xadd(
            keys.case_audit(case.id),
            {"at": now, "actor": "bot", "action": "resumed", "detail": "{}"},
        )
        pipe.execute()
    return True


async def resume_pending(referrals: Referrals, rasa: RasaClient) -> int:
    """Retry the resumes Rasa missed; returns how many succeeded."""
    done = 0
    for case_id in sorted(referrals.db.smembers(RESUME_PENDING)):
        case = referrals.get(case_id, transcript=False)
        if case.status != "closed" or not case.conversation_id:
            referrals.db.srem(RESUME_PENDING, case_id)
            continue
        if referrals.open_case_id(case.conversation_id):
            # A new case opened meanwhile; the bot must stay paused for it.
            referrals.db.srem(RESUME_PENDING, case_id)
            continue
        if await resume(referrals, rasa, case):
            done += 1
    return done
