"""Closing a case gives the conversation back to the bot, with one closing line to the person.

Nothing here asks Rasa: the conversation router (channels/router.py) sends a conversation's
messages to the bot as soon as the queue holds no open case for it, so the hand-back is the
close itself, and it works while Rasa is down. The closing line is a line of the case's
transcript, sent with its delivery status like every other.
"""

from __future__ import annotations

import logging

from hotline import conversations, keys
from referral import waiting
from referral.queue import Case, Referrals, record_outgoing
from referral.texts import text

log = logging.getLogger(__name__)

CLOSING_TEXT = "utter_case_closed"  # data/handoff.yml


def close_and_hand_back(
    referrals: Referrals,
    case_id: str,
    counsellor: str,
    outcome: str,
    note: str | None = None,
) -> Case:
    """Record the outcome and send the person one closing line in their language."""
    case = referrals.close(case_id, counsellor, outcome, note)
    if not case.conversation_id:
        return case
    db = referrals.db
    cid = case.conversation_id
    language = conversations.language(db, cid) or case.language
    with db.pipeline(transaction=True) as pipe:
        record_outgoing(
            pipe,
            case.id,
            text(CLOSING_TEXT, language),
            author="system",
            at=referrals.clock(),
            conversation_id=cid,
        )
        waiting.return_to_case(pipe, cid)  # nothing to step back from any more
        pipe.delete(keys.waiting_ack(cid))
        pipe.execute()
    log.info("case %s handed back to the bot", case.id)
    return case
