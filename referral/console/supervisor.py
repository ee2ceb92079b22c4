"""The supervisor's console: the hotline at a glance, each case's audit trail, counsellor accounts.

Every change to an account is in the account trail (trail.py); a reset password or a
disabled account ends that account's sessions at once.

Pages live under /supervisor and their JSON twins under /api/supervisor. The router itself
depends on `deps.supervisor`, so no route here can forget the role check. A refusal is
raised as `errors.Refused` and drawn by errors.py, for the pages and the API alike.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Depends, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from referral import accounts, failures, rota, stats
from referral.accounts import AccountError, Counsellor
from referral.console import formatting, sessions, trail
from referral.console.casework import reason_words
from referral.console.deps import ClockDep, DbDep, ReferralsDep, RotaDep, SupervisorDep, supervisor
from referral.console.errors import Refused
from referral.console.i18n import Translator, translator
from referral.console.pages import render
from referral.queue import AuditEvent, Case, CaseNotFound, Referrals

router = APIRouter(dependencies=[Depends(supervisor)])

# The dashboard lists this many open cases; the figures above it count all of them.
OPEN_CASES_SHOWN = 100
_CASE_ID = re.compile(r"^R\d{1,12}$")
# A delivery record id (a MessageSid, rejected-<entry>-<n>) and a stream id, as the pages name
# them: anything else is refused before Redis is asked.
_RECORD_ID = re.compile(r"^[\w-]{1,80}$")
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


# ---------------------------------------------------------------- what the pages and the API share


def _account(db: redis.Redis, name: str) -> Counsellor:
    account = accounts.get(db, name.strip().lower())
    if account is None:
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_no_account", name=name)
    return account


def _add(
    db: redis.Redis, me: Counsellor, name: str, role: str, language: str, at: float
) -> tuple[Counsellor, str]:
    password = accounts.generate_password()
    try:
        account = accounts.add(db, name, role, password, language=language)  # type: ignore[arg-type]
    except AccountError as error:
        # accounts.py says "exists already" for a taken name: a conflict, not a bad request.
        code = status.HTTP_409_CONFLICT if "exists" in str(error) else status.HTTP_400_BAD_REQUEST
        raise Refused(code, "sv_account_error", reason=str(error)) from error
    trail.account_event(
        db, "account_added", actor=me.name, account=account.name, at=at, role=account.role
    )
    return account, password


def _set_active(db: redis.Redis, me: Counsellor, name: str, active: bool, at: float) -> Counsellor:
    account = _account(db, name)
    if not active and account.name == me.name:
        # The acting supervisor stays, so the hotline always keeps one who can undo this.
        raise Refused(status.HTTP_400_BAD_REQUEST, "sv_cannot_disable_self")
    accounts.set_active(db, account.name, active)
    if not active:
        rota.leave(db, account.name)  # no longer counted as on duty
        sessions.end_all(db, account.name)
    trail.account_event(
        db,
        "account_enabled" if active else "account_disabled",
        actor=me.name,
        account=account.name,
        at=at,
    )
    return _account(db, account.name)


def _reset_password(
    db: redis.Redis, me: Counsellor, name: str, at: float
) -> tuple[Counsellor, str]:
    account = _account(db, name)
    password = accounts.generate_password()
    accounts.set_password(db, account.name, password)
    # Whoever knew the old password may hold a session: it ends with the password.
    ended = sessions.end_all(db, account.name)
    trail.account_event(
        db, "password_reset", actor=me.name, account=account.name, at=at, sessions_ended=ended
    )
    return account, password


def _staffing(db: redis.Redis, hours: rota.Rota, now: float) -> dict[str, Any]:
    """Who has the console open, and whether that, with the rota's hours, means someone answers."""
    present = [
        account
        for account in (accounts.get(db, name) for name in rota.present(db, now))
        if account and account.active
    ]
    in_hours = rota.in_hours(now, hours)
    following = None if in_hours else rota.next_shift_start(now, hours)
    return {
        "in_hours": in_hours,
        "on_duty": in_hours and bool(present),  # rota.on_duty's rule, over active accounts only
        "present": [{"name": account.name, "role": account.role} for account in present],
        "next_shift": following.timestamp() if following else None,
    }


# Audit details never carry texts today; this keeps it so if a future event adds one.
_PRIVATE_DETAILS = {
    "text",
    "body",
    "message",
    "note_text",
    "summary",
    "phrase",
    "indicators",
    "address",
    "phone",
    "number",
    "from_number",
    "to_number",
    "conversation_id",
}
_SAFE_VALUE = re.compile(r"^[\w.:@-]{0,64}$")
_LONG_NUMBER = re.compile(r"\d{7,}")


def _is_code(value: Any) -> bool:
    """A flag, a count, or one short word (an outcome code, a name); never a sentence or a number."""
    if isinstance(value, str):
        return bool(_SAFE_VALUE.match(value)) and not _LONG_NUMBER.search(value)
    return value is None or isinstance(value, bool | int | float)


def safe_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The parts of an audit event's detail a supervisor may see: codes and names, no free text."""
    return {
        key: value
        for key, value in detail.items()
        if key not in _PRIVATE_DETAILS and _is_code(value)
    }


def _event(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "actor": event.actor,
        "action": event.action,
        "detail": safe_detail(event.detail),
    }


def _case_facts(case: Case) -> dict[str, Any]:
    return {**asdict(stats.CaseFacts.of(case)), "erased_at": case.erased_at}


def _audit(referrals: Referrals, case_id: str) -> tuple[Case, list[AuditEvent]]:
    case_id = case_id.strip().upper()
    if not _CASE_ID.match(case_id):
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_case_not_found", id=case_id)
    try:
        case = referrals.get(case_id, transcript=False)
    except CaseNotFound as error:
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_case_not_found", id=case_id) from error
    return case, referrals.audit(case_id)


# ---------------------------------------------------------------- codes as words on the pages


def _bars(counts: dict[str, int], prefix: str, t: Translator) -> list[dict[str, Any]]:
    """Rows of a bar chart; widths are shares of the largest bar, so the chart fills its box."""
    top = max(counts.values(), default=0) or 1
    return [
        {
            "code": code,
            "label": t.code(prefix, code),
            "count": count,
            "width": round(100 * count / top, 1),
        }
        for code, count in counts.items()
    ]


_DETAIL_WORDS = {
    "priority": "sv_priority_",
    "previous_priority": "sv_priority_",
    "risk_level": "sv_level_",
    "outcome": "outcome_",
    "consent": "sv_consent_",
    "trigger": "intent_",
}


def _detail_lines(t: Translator, detail: dict[str, Any]) -> list[str]:
    """An audit event's safe detail as short phrases: 'outcome: Referred: shelter', 'to: the queue'."""
    lines = []
    for key, value in detail.items():
        if isinstance(value, bool):
            shown = t("sv_yes") if value else t("sv_no")
        elif value in (None, ""):
            if key not in ("to", "from"):
                continue  # nothing recorded
            shown = t("sv_queue")  # a transfer to or from nobody is the queue
        elif key in _DETAIL_WORDS:
            shown = t.code(_DETAIL_WORDS[key], value)
        else:
            shown = str(value)
        lines.append(f"{t.code('sv_detail_', key)}: {shown}")
    return lines


# ---------------------------------------------------------------- the dashboard


@router.get("/supervisor", response_class=HTMLResponse, summary="The hotline at a glance")
def dashboard_page(
    request: Request,
    me: SupervisorDep,
    db: DbDep,
    referrals: ReferralsDep,
    hours: RotaDep,
    clock: ClockDep,
) -> Response:
    now = clock()
    figures = stats.dashboard(referrals, hours.timezone, now)
    t = translator(me.language)
    return render(
        request,
        "supervisor.html",
        me=me,
        d=figures,
        staffing=_staffing(db, hours, now),
        outcome_bars=_bars(figures.by_outcome, "outcome_", t),
        language_bars=_bars(figures.by_language, "lang_", t),
        shown_open=figures.open_cases[:OPEN_CASES_SHOWN],
        more_open=max(0, len(figures.open_cases) - OPEN_CASES_SHOWN),
        when=formatting.clock(hours.timezone, now),
        duration=formatting.duration,
        now=now,
    )


@router.get("/api/supervisor/dashboard", summary="The dashboard's figures")
def dashboard_api(
    me: SupervisorDep, db: DbDep, referrals: ReferralsDep, hours: RotaDep, clock: ClockDep
) -> dict[str, Any]:
    now = clock()
    figures = stats.dashboard(referrals, hours.timezone, now)
    return {**asdict(figures), "staffing": _staffing(db, hours, now)}


# ---------------------------------------------------------------- a case's audit trail


@router.get("/supervisor/audit", include_in_schema=False)
def find_case(me: SupervisorDep, case: str = "") -> Response:
    """The dashboard's 'audit trail of case …' box."""
    case_id = case.strip().upper()
    if not _CASE_ID.match(case_id):
        return RedirectResponse("/supervisor", status_code=303)
    return RedirectResponse(f"/supervisor/cases/{case_id}/audit", status_code=303)


@router.get(
    "/supervisor/cases/{case_id}/audit", response_class=HTMLResponse, summary="A case's audit trail"
)
def audit_page(
    request: Request,
    case_id: str,
    me: SupervisorDep,
    referrals: ReferralsDep,
    hours: RotaDep,
    clock: ClockDep,
) -> Response:
    case, events = _audit(referrals, case_id)
    t = translator(me.language)
    shown = [
        {
            **event,
            "what": t.code("sv_action_", event["action"]),
            "lines": _detail_lines(t, event["detail"]),
        }
        for event in map(_event, events)
    ]
    return render(
        request,
        "supervisor_audit.html",
        me=me,
        case=case,
        events=shown,
        case_id=case.id,
        when=formatting.clock(hours.timezone, clock(), seconds=True),
        outcome=t.code("outcome_", case.outcome),
    )


@router.get(
    "/api/supervisor/cases/{case_id}/audit", summary="A case's audit trail: who, what, when"
)
def audit_api(case_id: str, me: SupervisorDep, referrals: ReferralsDep) -> dict[str, Any]:
    case, events = _audit(referrals, case_id)
    return {"case": _case_facts(case), "events": [_event(e) for e in events]}


# ---------------------------------------------------------------- counsellor accounts


class Account(BaseModel):
    name: str
    role: str
    language: str
    active: bool

    @classmethod
    def of(cls, counsellor: Counsellor) -> Account:
        return cls(
            name=counsellor.name,
            role=counsellor.role,
            language=counsellor.language,
            active=counsellor.active,
        )


class NewAccount(BaseModel):
    name: str
    role: Literal["counsellor", "supervisor"] = "counsellor"
    language: Literal["pt", "en"] = "pt"


class IssuedPassword(BaseModel):
    """A generated password, shown this once; only its hash is kept."""

    account: Account
    password: str


def _accounts_page(
    request: Request,
    me: Counsellor,
    db: redis.Redis,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    page = render(
        request,
        "supervisor_counsellors.html",
        me=me,
        accounts=accounts.all_counsellors(db),
        roles=accounts.ROLES,
        languages=accounts.UI_LANGUAGES,
        notice=notice,
        problem=problem,
        form=form or {"name": "", "role": "counsellor", "language": me.language},
    )
    page.status_code = status_code
    return page


def _password_page(
    request: Request,
    me: Counsellor,
    account: Counsellor,
    password: str,
    kind: Literal["added", "reset"],
) -> Response:
    page = render(
        request, "supervisor_password.html", me=me, account=account, password=password, kind=kind
    )
    page.status_code = status.HTTP_201_CREATED if kind == "added" else status.HTTP_200_OK
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/supervisor/counsellors", response_class=HTMLResponse, summary="Counsellor accounts")
def accounts_page(
    request: Request, me: SupervisorDep, db: DbDep, done: str | None = None, who: str | None = None
) -> Response:
    t = translator(me.language)
    notice = t(f"sv_done_{done}", name=who) if done in ("disabled", "enabled") and who else None
    return _accounts_page(request, me, db, notice=notice)


@router.post("/supervisor/counsellors", response_class=HTMLResponse, include_in_schema=False)
def add_form(
    request: Request,
    me: SupervisorDep,
    db: DbDep,
    clock: ClockDep,
    name: str = Form(""),
    role: str = Form("counsellor"),
    language: str = Form("pt"),
) -> Response:
    try:
        account, password = _add(db, me, name, role, language, clock())
    except Refused as error:
        # The one refusal drawn here rather than by errors.py: the form comes back with
        # what was typed, so a supervisor corrects a name instead of typing it again.
        return _accounts_page(
            request,
            me,
            db,
            problem=translator(me.language)(error.key, **error.values),
            status_code=error.status_code,
            form={"name": name, "role": role, "language": language},
        )
    return _password_page(request, me, account, password, "added")


@router.post("/supervisor/counsellors/{name}/disable", include_in_schema=False)
def disable_form(name: str, me: SupervisorDep, db: DbDep, clock: ClockDep) -> Response:
    account = _set_active(db, me, name, False, clock())
    return RedirectResponse(
        f"/supervisor/counsellors?done=disabled&who={account.name}", status_code=303
    )


@router.post("/supervisor/counsellors/{name}/enable", include_in_schema=False)
def enable_form(name: str, me: SupervisorDep, db: DbDep, clock: ClockDep) -> Response:
    account = _set_active(db, me, name, True, clock())
    return RedirectResponse(
        f"/supervisor/counsellors?done=enabled&who={account.name}", status_code=303
    )


@router.post(
    "/supervisor/counsellors/{name}/reset-password",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def reset_form(
    request: Request, name: str, me: SupervisorDep, db: DbDep, clock: ClockDep
) -> Response:
    account, password = _reset_password(db, me, name, clock())
    return _password_page(request, me, account, password, "reset")


@router.get("/api/supervisor/counsellors", summary="Every counsellor account")
def accounts_api(me: SupervisorDep, db: DbDep) -> list[Account]:
    return [Account.of(c) for c in accounts.all_counsellors(db)]


@router.post(
    "/api/supervisor/counsellors",
    status_code=status.HTTP_201_CREATED,
    summary="Add an account; the generated password is in this answer only",
)
def add_api(
    body: NewAccount, response: Response, me: SupervisorDep, db: DbDep, clock: ClockDep
) -> IssuedPassword:
    account, password = _add(db, me, body.name, body.role, body.language, clock())
    response.headers["Cache-Control"] = "no-store"
    return IssuedPassword(account=Account.of(account), password=password)


@router.post(
    "/api/supervisor/counsellors/{name}/disable", summary="Disable an account (not your own)"
)
def disable_api(name: str, me: SupervisorDep, db: DbDep, clock: ClockDep) -> Account:
    return Account.of(_set_active(db, me, name, False, clock()))


@router.post("/api/supervisor/counsellors/{name}/enable", summary="Enable a disabled account")
def enable_api(name: str, me: SupervisorDep, db: DbDep, clock: ClockDep) -> Account:
    return Account.of(_set_active(db, me, name, True, clock()))


@router.post(
    "/api/supervisor/counsellors/{name}/reset-password",
    summary="Give an account a new generated password, returned this once",
)
def reset_api(
    name: str, response: Response, me: SupervisorDep, db: DbDep, clock: ClockDep
) -> IssuedPassword:
    account, password = _reset_password(db, me, name, clock())
    response.headers["Cache-Control"] = "no-store"
    return IssuedPassword(account=Account.of(account), password=password)


@router.get(
    "/api/supervisor/accounts/audit",
    summary="Account events: who signed in, was refused, "
    "locked out, added, disabled, enabled or reset, and when (newest first)",
)
def account_trail_api(
    me: SupervisorDep,
    db: DbDep,
    account: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    found = trail.account_events(db, limit, account.strip().lower() if account else None)
    return {"events": [_event(trail.as_audit_event(event)) for event in found]}


# ---------------------------------------------------------------- undelivered replies and dead letters


def _failure_rows(db: redis.Redis, t: Translator) -> dict[str, list[dict[str, Any]]]:
    """Both lists with their reasons in words: ids and codes only, never a number or a text."""
    return {
        "undelivered": [
            {
                **asdict(reply),
                "reason": reply.reason,
                "why": reason_words(reply.reason, t),
                "why_not": t(
                    "sv_not_replayable", why=t.code("sv_not_replayable_", reply.not_replayable)
                )
                if reply.not_replayable
                else "",
            }
            for reply in failures.list_undelivered(db)
        ],
        "dead_letters": [
            {**asdict(dead), "from": t.code("sv_origin_", dead.origin)}
            for dead in failures.list_dead(db)
        ],
    }


def _replay_reply(db: redis.Redis, me: Counsellor, record_id: str) -> int:
    if not _RECORD_ID.match(record_id):
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_failure_not_found", id=record_id)
    try:
        return failures.replay_undelivered(db, record_id, me.name)
    except failures.NotFound as error:
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_failure_not_found", id=record_id) from error
    except failures.NotReplayable as error:
        # sv_cannot_replay_opted_out, _cannot_receive, _text_not_kept
        raise Refused(status.HTTP_409_CONFLICT, f"sv_cannot_replay_{error.reason}") from error


def _dismiss_reply(db: redis.Redis, me: Counsellor, record_id: str) -> None:
    if not _RECORD_ID.match(record_id):
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_failure_not_found", id=record_id)
    try:
        failures.dismiss_undelivered(db, record_id, me.name)
    except failures.NotFound as error:
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_failure_not_found", id=record_id) from error


def _replay_dead(db: redis.Redis, me: Counsellor, entry_id: str) -> int:
    if not _STREAM_ID.match(entry_id):
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_failure_not_found", id=entry_id)
    try:
        replayed = failures.replay_dead(db, entry_id, me.name)
    except failures.NotFound as error:
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_failure_not_found", id=entry_id) from error
    if not replayed:  # replayed by someone else a moment ago
        raise Refused(status.HTTP_404_NOT_FOUND, "sv_failure_not_found", id=entry_id)
    return replayed


@router.get(
    "/supervisor/undelivered",
    response_class=HTMLResponse,
    summary="Undelivered replies and dead letters",
)
def failures_page(
    request: Request,
    me: SupervisorDep,
    db: DbDep,
    hours: RotaDep,
    clock: ClockDep,
    done: str | None = None,
    which: str | None = None,
) -> Response:
    t = translator(me.language)
    notice = (
        t(f"sv_done_{done}", id=which)
        if done in ("replayed", "dismissed", "dead_replayed") and which
        else None
    )
    return render(
        request,
        "supervisor_undelivered.html",
        me=me,
        rows=_failure_rows(db, t),
        notice=notice,
        when=formatting.clock(hours.timezone, clock()),
    )


@router.post("/supervisor/undelivered/{record_id}/replay", include_in_schema=False)
def replay_reply_form(record_id: str, me: SupervisorDep, db: DbDep) -> Response:
    _replay_reply(db, me, record_id)
    return RedirectResponse(
        f"/supervisor/undelivered?done=replayed&which={record_id}", status_code=303
    )


@router.post("/supervisor/undelivered/{record_id}/dismiss", include_in_schema=False)
def dismiss_reply_form(record_id: str, me: SupervisorDep, db: DbDep) -> Response:
    _dismiss_reply(db, me, record_id)
    return RedirectResponse(
        f"/supervisor/undelivered?done=dismissed&which={record_id}", status_code=303
    )


@router.post("/supervisor/dead-letters/{entry_id}/replay", include_in_schema=False)
def replay_dead_form(entry_id: str, me: SupervisorDep, db: DbDep) -> Response:
    _replay_dead(db, me, entry_id)
    return RedirectResponse(
        f"/supervisor/undelivered?done=dead_replayed&which={entry_id}", status_code=303
    )


@router.get(
    "/api/supervisor/undelivered",
    summary="Undelivered replies (newest first) and dead letters (oldest first), with the "
    "reason; ids and codes only, never a phone number or a text",
)
def failures_api(me: SupervisorDep, db: DbDep) -> dict[str, Any]:
    return _failure_rows(db, translator(me.language))


@router.post(
    "/api/supervisor/undelivered/{record_id}/replay",
    summary="Send an undelivered line of a case again (refused with 409 and the reason when "
    "it cannot be: opted out, a number that cannot receive, a text not kept)",
)
def replay_reply_api(record_id: str, me: SupervisorDep, db: DbDep) -> dict[str, Any]:
    return {"id": record_id, "lines_queued": _replay_reply(db, me, record_id)}


@router.post(
    "/api/supervisor/undelivered/{record_id}/dismiss",
    summary="Take an undelivered reply off the list without sending it again",
)
def dismiss_reply_api(record_id: str, me: SupervisorDep, db: DbDep) -> dict[str, Any]:
    _dismiss_reply(db, me, record_id)
    return {"id": record_id, "dismissed": True}


@router.post(
    "/api/supervisor/dead-letters/{entry_id}/replay",
    summary="Put a dead letter back on the stream it came from",
)
def replay_dead_api(entry_id: str, me: SupervisorDep, db: DbDep) -> dict[str, Any]:
    return {"id": entry_id, "replayed": _replay_dead(db, me, entry_id)}
