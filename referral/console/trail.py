"""What the console records about who did what: account events, and every reading of a case.

Account events (added, disabled, enabled, password reset, signed in and out, a refused
sign-in, a lockout) go to one capped stream that supervisors read. Reading a case appends
`viewed` to that case's own audit trail, beside its claims and closes, after permissions.py
allowed it. Neither ever carries a text, a password, or a name nobody has an account for.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import redis

from hotline import keys
from referral.console import permissions
from referral.console.casework import Casework
from referral.queue import AuditEvent, Case

ACCOUNT_TRAIL = keys.ACCOUNT_TRAIL_STREAM
# Years of a hotline's sign-ins; the stream trims its oldest entries past this.
ACCOUNT_TRAIL_LENGTH = 100_000
# One `viewed` per counsellor and case in this window: a case page whose transcript refreshes
# live, or a reload, is one reading, not hundreds.
READ_WINDOW_SECONDS = 10 * 60
# Whoever typed a name no account has: the name itself may be a password typed in the wrong box.
UNKNOWN = "unknown"

AccountAction = Literal[
    "account_added",
    "account_disabled",
    "account_enabled",
    "password_reset",
    "signed_in",
    "signed_out",
    "sign_in_refused",
    "locked_out",
]


def account_event(
    db: redis.Redis,
    action: AccountAction,
    *,
    actor: str,
    account: str,
    at: float,
    **detail: str | int | bool,
) -> None:
    """Append one account event; `actor` did it, `account` is the account it was about."""
    db.xadd(
        ACCOUNT_TRAIL,
        {
            "at": f"{at:.6f}",
            "actor": actor,
            "action": action,
            "account": account,
            "detail": json.dumps(detail),
        },
        maxlen=ACCOUNT_TRAIL_LENGTH,
        approximate=True,
    )


def account_events(
    db: redis.Redis, limit: int = 200, account: str | None = None
) -> list[dict[str, Any]]:
    """The latest account events, newest first (only about `account`, when given)."""
    events = []
    for entry_id, fields in db.xrevrange(ACCOUNT_TRAIL, count=limit if account is None else None):
        if account is not None and fields.get("account") != account:
            continue
        events.append(
            {
                "id": entry_id,
                "at": float(fields.get("at") or 0),
                "actor": fields.get("actor", ""),
                "action": fields.get("action", ""),
                "account": fields.get("account", ""),
                "detail": json.loads(fields.get("detail") or "{}"),
            }
        )
        if len(events) >= limit:
            break
    return events


def as_audit_event(event: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        id=event["id"],
        at=event["at"],
        actor=event["actor"],
        action=event["action"],
        detail={"account": event["account"], **event["detail"]},
    )


def case_read(db: redis.Redis, case_id: str, reader: str, at: float) -> bool:
    """Record that `reader` read the case; False when they already did within the window."""
    if not db.set(keys.case_read(case_id, reader), "1", nx=True, ex=READ_WINDOW_SECONDS):
        return False
    db.xadd(
        keys.case_audit(case_id),
        {"at": f"{at:.6f}", "actor": reader, "action": "viewed", "detail": "{}"},
    )
    return True


def read_case(work: Casework, case_id: str, at: float, transcript: bool = True) -> Case:
    """A case for the counsellor to read: refused when permissions.py says no, recorded when yes."""
    case = work.case(case_id, transcript=transcript)
    permissions.check(work.me, "view", case)
    case_read(work.db, case.id, work.me.name, at)
    return case
