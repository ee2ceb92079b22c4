"""Who may do what in the console, decided here and nowhere else.

Anyone signed in may read the queue and any open case, and claim a waiting one. A closed
case is read only by the counsellor who held or closed it, and by supervisors: the person's
story is not there for every colleague to browse once the work is done. Working a case
(reply, note, transfer, close) belongs to the counsellor who claimed it; a supervisor may
act on any case. Supervisor pages check the role through `deps.supervisor`, which asks
`is_supervisor` below.
"""

from __future__ import annotations

from typing import Literal

from referral.accounts import Counsellor
from referral.queue import Case, CaseClosed, NotYourCase

Action = Literal["view", "claim", "reply", "note", "transfer", "close"]
ACTIONS: tuple[Action, ...] = ("view", "claim", "reply", "note", "transfer", "close")
# The actions that change a case's conversation or ownership: only for its holder.
HOLDER_ACTIONS: frozenset[Action] = frozenset({"reply", "note", "transfer", "close"})


def is_supervisor(counsellor: Counsellor) -> bool:
    return counsellor.active and counsellor.is_supervisor


def allowed(counsellor: Counsellor, action: Action, case: Case) -> bool:
    """Whether the counsellor may take this action on this case now."""
    if action == "view":
        return (
            case.is_open
            or is_supervisor(counsellor)
            or counsellor.name in (case.claimed_by, case.closed_by)
        )
    if not case.is_open:
        return False
    if action == "claim":
        return case.status == "waiting"
    if is_supervisor(counsellor):
        # A supervisor may reply only once someone holds the case (the queue insists).
        return action != "reply" or case.claimed_by is not None
    return case.claimed_by == counsellor.name


def check(counsellor: Counsellor, action: Action, case: Case) -> None:
    """Raise the queue's own error for a refused action, so the API and the pages say why.

    Claiming is left to the queue's atomic claim, which names whoever was faster.
    """
    if action == "claim" or allowed(counsellor, action, case):
        return
    if action == "view":
        raise NotYourCase(case.id, case.closed_by or case.claimed_by)
    if not case.is_open:
        raise CaseClosed(case.id)
    raise NotYourCase(case.id, case.claimed_by)


def actions_for(counsellor: Counsellor, case: Case) -> frozenset[Action]:
    """Everything the counsellor may do on the case: what the case page offers."""
    return frozenset(action for action in ACTIONS if allowed(counsellor, action, case))
