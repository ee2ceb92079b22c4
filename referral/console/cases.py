"""The counsellor's pages: the queue, a case, and the forms that work it.

Forms post, then redirect back with a message (post/redirect/get), so a reload never sends
a reply twice. Live parts fetch the small fragments below when /events says something changed.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hotline import sms
from hotline.language import DEFAULT_LANGUAGE
from referral import rota
from referral.console import casework, formatting, library, permissions, sessions, trail
from referral.console.casework import Casework
from referral.console.deps import (
    CaseworkDep,
    ClockDep,
    CounsellorDep,
    DbDep,
    RotaDep,
    SettingsDep,
    ZoneDep,
)
from referral.console.events import stream_position
from referral.console.i18n import translator
from referral.console.pages import render
from referral.queue import OUTCOMES

router = APIRouter(include_in_schema=False)

Tab = Literal["waiting", "mine", "open"]


def _flash(request: Request, db) -> dict | None:
    return sessions.take_flash(db, request.cookies.get(sessions.COOKIE))


def _back(request: Request, db, case_id: str, key: str, **values: str) -> RedirectResponse:
    sessions.flash(db, request.cookies.get(sessions.COOKIE), key, "ok", **values)
    return RedirectResponse(f"/cases/{case_id}", status_code=status.HTTP_303_SEE_OTHER)


def _queue_context(work: Casework, tab: Tab, now: float) -> dict[str, Any]:
    t = translator(work.me.language)
    return {
        "tab": tab,
        "cases": work.queue(tab),
        "total": work.queue_size(tab),
        "now": now,
        "badge": casework.risk_badge,
        "evidence": lambda case: casework.evidence_line(case, t),
        "waited": formatting.waited,
    }


# ---------------------------------------------------------------- the queue


@router.get("/", response_class=HTMLResponse)
def queue_page(
    request: Request,
    me: CounsellorDep,
    work: CaseworkDep,
    db: DbDep,
    clock: ClockDep,
    tab: Tab = "waiting",
) -> Response:
    # The position is taken before the rows are read: a change that lands while they are read
    # is then followed (one reload too many) rather than skipped (a row left stale).
    since = stream_position(db)
    return render(
        request,
        "queue.html",
        me=me,
        flash=_flash(request, db),
        since=since,
        **_queue_context(work, tab, clock()),
    )


@router.get("/queue/rows", response_class=HTMLResponse)
def queue_rows(
    request: Request, me: CounsellorDep, work: CaseworkDep, clock: ClockDep, tab: Tab = "waiting"
) -> Response:
    return render(request, "queue_rows.html", me=me, **_queue_context(work, tab, clock()))


@router.post("/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
def heartbeat(me: CounsellorDep, db: DbDep, hours: RotaDep) -> Response:
    """The open console says its counsellor is here (the rota's presence)."""
    rota.heartbeat(db, me.name, rota=hours)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- a case


def _transcript_context(work: Casework, case_id: str, zone: ZoneInfo, now: float) -> dict[str, Any]:
    case = trail.read_case(work, case_id, now)
    t = translator(work.me.language)
    return {
        "case": case,
        "lines": casework.transcript_lines(case),
        "delivery": lambda message: casework.delivery_words(message.delivery, t),
        "now": now,
        "clock": formatting.clock(zone, now),
        "iso": lambda at: formatting.iso(at, zone),
    }


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: str,
    me: CounsellorDep,
    work: CaseworkDep,
    db: DbDep,
    settings: SettingsDep,
    zone: ZoneDep,
    clock: ClockDep,
) -> Response:
    now = clock()
    # Before the transcript is read, as on the queue page: a delivery report that lands while
    # the page is built (a reply's "delivered" comes within a second) must still reach it.
    since = stream_position(db)
    context = _transcript_context(work, case_id, zone, now)
    case = context["case"]
    language = case.language or DEFAULT_LANGUAGE
    return render(
        request,
        "case.html",
        me=me,
        flash=_flash(request, db),
        since=since,
        **context,
        actions=permissions.actions_for(me, case),
        badge=casework.risk_badge(case),
        evidence=casework.evidence_line(case, translator(me.language)),
        masked=casework.masked_address(
            db, case.conversation_id, settings.fernet_key.get_secret_value()
        ),
        outside_window=casework.outside_whatsapp_window(case, now),
        opted_out=casework.opted_out(db, case.conversation_id),
        waited=formatting.waited(now - case.opened_at),
        canned=library.canned_replies(settings.data_dir, language, me.language),
        provinces=library.PROVINCES,
        service_types=library.SERVICE_TYPES,
        outcomes=OUTCOMES,
        colleagues=[c for c in work.transfer_targets() if c.name != case.claimed_by],
        gsm=json.dumps(
            {
                "basic": "".join(sorted(sms.GSM7_BASIC)),
                "extension": "".join(sorted(sms.GSM7_EXTENSION)),
            },
            ensure_ascii=False,
        ),
        segments=sms.segment_count(""),
    )


@router.get("/cases/{case_id}/transcript", response_class=HTMLResponse)
def transcript_fragment(
    request: Request,
    case_id: str,
    me: CounsellorDep,
    work: CaseworkDep,
    zone: ZoneDep,
    clock: ClockDep,
) -> Response:
    return render(
        request, "transcript.html", me=me, **_transcript_context(work, case_id, zone, clock())
    )


@router.get("/cases/{case_id}/services", response_class=HTMLResponse)
def services_fragment(
    request: Request,
    case_id: str,
    me: CounsellorDep,
    work: CaseworkDep,
    settings: SettingsDep,
    province: str = "",
    type: str = "",
) -> Response:
    case = work.case(case_id, transcript=False)
    permissions.check(me, "view", case)
    found = library.search_services(
        settings.data_dir, province, type, case.language or DEFAULT_LANGUAGE
    )
    return render(request, "services.html", me=me, services=found, searched=True)


@router.post("/cases/{case_id}/claim")
def claim_form(request: Request, case_id: str, work: CaseworkDep, db: DbDep) -> Response:
    work.claim(case_id)
    return _back(request, db, case_id, "claimed_ok", id=case_id)


@router.post("/cases/{case_id}/reply")
def reply_form(
    request: Request, case_id: str, work: CaseworkDep, db: DbDep, text: str = Form("")
) -> Response:
    work.reply(case_id, text)
    return _back(request, db, case_id, "reply_sent")


@router.post("/cases/{case_id}/note")
def note_form(
    request: Request, case_id: str, work: CaseworkDep, db: DbDep, text: str = Form("")
) -> Response:
    work.note(case_id, text)
    return _back(request, db, case_id, "note_saved")


@router.post("/cases/{case_id}/transfer")
def transfer_form(
    request: Request, case_id: str, work: CaseworkDep, db: DbDep, to: str = Form("")
) -> Response:
    case = work.transfer(case_id, to or None)
    if case.claimed_by:
        return _back(request, db, case_id, "transferred_to", who=case.claimed_by)
    return _back(request, db, case_id, "transferred_back")


@router.post("/cases/{case_id}/close")
def close_form(
    request: Request,
    case_id: str,
    work: CaseworkDep,
    db: DbDep,
    outcome: str = Form(""),
    note: str = Form(""),
) -> Response:
    work.close(case_id, outcome, note)
    return _back(request, db, case_id, "closed_ok")
