"""How the risk screen's reading sets a case's priority, and raising an open case when it rises.

A case opens at the priority the screen gives the conversation (actions/handoff.py); while it is
open, the conversation router (channels/router.py) screens every message the person writes and
raises the case here when the reading goes up. Raising goes through the queue's opening script,
which only ever moves a priority up and tells the consoles (an emergency alerts them).
"""

from __future__ import annotations

from protection import risk
from referral.queue import PRIORITIES, RISK_LEVELS, Case, Priority, Referrals

TRIGGER = "relayed_message"  # the audit trail says a message written while waiting raised it


def priority_for(assessment: risk.Assessment) -> Priority:
    """Emergency, high (disclosure, someone else at risk, a child alone) or a plain request.

    The screen alone decides (protection/risk.py): the model's reading is one of its kinds of
    evidence, so a misread "yes please" cannot push a real emergency down the queue.
    """
    if assessment.level == "emergency":
        return "emergency"
    if assessment.level == "high":
        return "high"
    return "request"


def _rank(values: tuple[str, ...], value: str) -> int:
    return values.index(value) if value in values else 0


def rises(case: Case, assessment: risk.Assessment) -> bool:
    """Whether the reading is above what the case holds (its level or its priority)."""
    higher_level = _rank(RISK_LEVELS, assessment.level) > _rank(RISK_LEVELS, case.risk_level)
    # PRIORITIES runs most urgent first.
    higher_priority = PRIORITIES.index(priority_for(assessment)) < PRIORITIES.index(case.priority)
    return higher_level or higher_priority


def escalate(referrals: Referrals, case: Case, assessment: risk.Assessment) -> bool:
    """Raise the open case to the reading (priority, level, evidence); False when it is not higher.

    The audit trail records it as re-triggered by a relayed message, and the change stream
    carries the new priority, so every open console moves the case and alerts on an emergency.
    """
    if not rises(case, assessment):
        return False
    referrals.open_case(
        case.conversation_id,
        priority=priority_for(assessment),
        channel=case.channel,
        language=case.language,
        risk_level=assessment.level,
        indicators=[
            {"name": i.name, "message_index": i.message_index, "phrase": i.phrase}
            for i in assessment.indicators
        ],
        summary=assessment.summary(case.language),
        about_other=assessment.about_other,
        trigger=TRIGGER,
    )
    return True
