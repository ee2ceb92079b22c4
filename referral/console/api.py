"""The console's JSON API under /api/: the same actions as the pages, behind the same login.

Send the session cookie, and for every POST the `X-CSRF-Token` header (GET /api/me gives it).
Refusals are JSON: 401 not signed in, 403 not your case, 404 unknown case, 409 claimed
by someone else or closed, or (error `opted_out`) a reply to a person who texted STOP,
422 a request that cannot be met as written.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from hotline import sms
from referral import rota
from referral.console import casework, library, permissions, trail
from referral.console.casework import MAX_NOTE_CHARS, MAX_REPLY_CHARS
from referral.console.deps import (
    CaseworkDep,
    ClockDep,
    CounsellorDep,
    DbDep,
    RotaDep,
    SettingsDep,
)
from referral.console.i18n import Translator, translator
from referral.console.library import ServiceHit
from referral.console.pages import render
from referral.queue import OUTCOMES, Case, Delivery

router = APIRouter(prefix="/api", tags=["console"])

Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]


class Problem(BaseModel):
    detail: str
    error: str | None = None
    case_id: str | None = None
    claimed_by: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Not signed in"},
    403: {
        "model": Problem,
        "description": "Not your case (a closed case of someone else's is for "
        "supervisors), or a wrong CSRF token",
    },
    404: {"model": Problem, "description": "No such case"},
    409: {
        "model": Problem,
        "description": "Claimed by someone else, or closed; for a reply, error `opted_out`: "
        "the person texted STOP and nothing can be sent until they write START",
    },
}


class Me(BaseModel):
    name: str
    role: str
    language: str
    csrf_token: str


class CaseSummary(BaseModel):
    id: str
    status: str
    priority: str
    risk_level: str
    badge: str = Field(
        description="The colour the console shows: risk level raised to the priority"
    )
    language: str
    channel: str
    evidence: str = Field(description="One line on why the case is here, in your language")
    about_other: bool
    consent: str
    opened_at: float
    waiting_seconds: float
    claimed_by: str | None
    claimed_at: float | None
    closed_at: float | None
    outcome: str | None


class Evidence(BaseModel):
    text: str
    evidence: str | None = Field(None, description="The indicator these words carry, if any")


class DeliveryOut(BaseModel):
    status: str = Field(description="queued, sent, delivered, read (WhatsApp) or failed")
    reason: str = Field(
        description="Why it failed: opted_out, no_address, dead_letter, twilio_<error code>, "
        "or empty"
    )
    words: str = Field(description="The status (and reason) in your language")


class TranscriptLine(BaseModel):
    id: str
    at: float
    author: str = Field(description="person, bot, system (the hotline's own texts) or counsellor")
    kind: str = Field(description="message (the person sees it or wrote it) or note (internal)")
    actor: str
    text: str
    spans: list[Evidence]
    evidence: list[str]
    delivery: DeliveryOut | None = Field(
        None, description="For a message sent to the person: how far it got"
    )


class CaseDetail(CaseSummary):
    masked_address: str
    indicators: list[dict[str, Any]]
    trigger: str
    closed_by: str | None
    outside_whatsapp_window: bool
    opted_out: bool = Field(
        description="The person texted STOP: replies are refused until they write START"
    )
    allowed_actions: list[str]
    transcript: list[TranscriptLine]


class TextIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_REPLY_CHARS)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


class Sent(BaseModel):
    case_id: str
    message_id: str
    channel: str
    segments: int = Field(description="SMS segments the reply takes (SMS only pays per segment)")


class TransferIn(BaseModel):
    to: str | None = Field(
        None, description="A colleague's name; empty or null puts the case back in the queue"
    )


class CloseIn(BaseModel):
    outcome: Outcome
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS)


class ClosedOut(BaseModel):
    case: CaseSummary
    bot_resumed: bool = Field(
        True, description="Always true: closing hands the conversation back, Rasa up or not"
    )


class Canned(BaseModel):
    id: str
    title: str
    text: str


class Colleague(BaseModel):
    name: str
    role: str


def _summary(case: Case, now: float, language: str) -> CaseSummary:
    """`language`: the counsellor's, for the words of `evidence`."""
    return CaseSummary(
        id=case.id,
        status=case.status,
        priority=case.priority,
        risk_level=case.risk_level,
        badge=casework.risk_badge(case),
        language=case.language,
        channel=case.channel,
        evidence=casework.evidence_line(case, translator(language)),
        about_other=case.about_other,
        consent=case.consent,
        opened_at=case.opened_at,
        waiting_seconds=max(0.0, (case.claimed_at or case.closed_at or now) - case.opened_at),
        claimed_by=case.claimed_by,
        claimed_at=case.claimed_at,
        closed_at=case.closed_at,
        outcome=case.outcome,
    )


def _delivery(delivery: Delivery | None, t: Translator) -> DeliveryOut | None:
    if delivery is None:
        return None
    return DeliveryOut(
        status=delivery.status,
        reason=delivery.reason,
        words=casework.delivery_words(delivery, t),
    )


# ---------------------------------------------------------------- who and where


@router.get("/me", response_model=Me)
def me(request: Request, me: CounsellorDep) -> Me:
    """The signed-in counsellor, and the CSRF token to send with every POST."""
    return Me(name=me.name, role=me.role, language=me.language, csrf_token=request.state.csrf)


@router.post("/heartbeat", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def heartbeat(me: CounsellorDep, db: DbDep, hours: RotaDep) -> Response:
    """Tell the rota this counsellor is at the console (send every 30 s or so)."""
    rota.heartbeat(db, me.name, rota=hours)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/counsellors", response_model=list[Colleague], responses=ERRORS)
def colleagues(work: CaseworkDep) -> list[Colleague]:
    """Active counsellors: whom a case can be transferred to."""
    return [Colleague(name=c.name, role=c.role) for c in work.transfer_targets()]


# ---------------------------------------------------------------- the queue and cases


@router.get("/queue", response_model=list[CaseSummary], responses=ERRORS)
def queue(
    work: CaseworkDep,
    clock: ClockDep,
    tab: Literal["waiting", "mine", "open"] = "waiting",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CaseSummary]:
    """Waiting cases by priority then waiting time; `mine`: my cases; `open`: every open case.
    The first `limit` of them, most urgent first."""
    now = clock()
    return [_summary(case, now, work.me.language) for case in work.queue(tab, limit)]


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=ERRORS)
def case_detail(
    case_id: str,
    me: CounsellorDep,
    work: CaseworkDep,
    db: DbDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> CaseDetail:
    """A case with its whole transcript, the risk evidence marked in the messages that carry it."""
    now = clock()
    case = trail.read_case(work, case_id, now)
    t = translator(me.language)
    lines = [
        TranscriptLine(
            id=line.message.id,
            at=line.message.at,
            author=line.message.author,
            kind=line.message.kind,
            actor=line.message.actor,
            text=line.message.text,
            spans=[Evidence(text=s.text, evidence=s.evidence) for s in line.spans],
            evidence=line.evidence,
            delivery=_delivery(line.message.delivery, t),
        )
        for line in casework.transcript_lines(case)
    ]
    return CaseDetail(
        **_summary(case, now, me.language).model_dump(),
        masked_address=casework.masked_address(
            db, case.conversation_id, settings.fernet_key.get_secret_value()
        ),
        indicators=case.indicators,
        trigger=case.trigger,
        closed_by=case.closed_by,
        outside_whatsapp_window=casework.outside_whatsapp_window(case, now),
        opted_out=casework.opted_out(db, case.conversation_id),
        allowed_actions=sorted(permissions.actions_for(me, case)),
        transcript=lines,
    )


@router.post("/cases/{case_id}/claim", response_model=CaseSummary, responses=ERRORS)
def claim(case_id: str, work: CaseworkDep, clock: ClockDep) -> CaseSummary:
    """Take a waiting case. 409 with `claimed_by` when someone else was faster."""
    return _summary(work.claim(case_id), clock(), work.me.language)


@router.post("/cases/{case_id}/reply", response_model=Sent, responses=ERRORS)
def reply(case_id: str, body: TextIn, work: CaseworkDep) -> Sent:
    """Send a message to the person on their channel (only in a case you hold). Refused
    (409, error `opted_out`) when the person texted STOP. Its status is then in the case's
    transcript, on the line `message_id`."""
    message_id = work.reply(case_id, body.text)
    case = work.case(case_id, transcript=False)
    return Sent(
        case_id=case_id,
        message_id=message_id,
        channel=case.channel,
        segments=sms.segment_count(body.text.strip()),
    )


@router.post("/cases/{case_id}/note", response_model=dict[str, str], responses=ERRORS)
def note(case_id: str, body: NoteIn, work: CaseworkDep) -> dict[str, str]:
    """An internal note: counsellors see it, the person never does."""
    return {"case_id": case_id, "message_id": work.note(case_id, body.text)}


@router.post("/cases/{case_id}/transfer", response_model=CaseSummary, responses=ERRORS)
def transfer(case_id: str, body: TransferIn, work: CaseworkDep, clock: ClockDep) -> CaseSummary:
    """Give the case to a colleague, or back to the waiting queue."""
    return _summary(work.transfer(case_id, body.to), clock(), work.me.language)


@router.post("/cases/{case_id}/close", response_model=ClosedOut, responses=ERRORS)
def close(case_id: str, body: CloseIn, work: CaseworkDep, clock: ClockDep) -> ClosedOut:
    """Close with an outcome; the person gets the closing line and the bot has them again."""
    closed = work.close(case_id, body.outcome, body.note)
    return ClosedOut(
        case=_summary(closed.case, clock(), work.me.language), bot_resumed=closed.bot_resumed
    )


# ---------------------------------------------------------------- what a reply draws on


@router.get("/services", response_model=list[ServiceHit], responses=ERRORS)
def services(
    me: CounsellorDep,
    settings: SettingsDep,
    province: str = "",
    type: str = "",
    language: str = "pt",
) -> list[ServiceHit]:
    """The service directory by province (national services always count) and type."""
    return library.search_services(settings.data_dir, province, type, language)


@router.get("/canned-replies", response_model=list[Canned], responses=ERRORS)
def canned_replies(me: CounsellorDep, settings: SettingsDep, language: str = "pt") -> list[Canned]:
    """Canned replies with their text in the person's language, titles in yours."""
    return [
        Canned(**reply.__dict__)
        for reply in library.canned_replies(settings.data_dir, language, me.language)
    ]


# ---------------------------------------------------------------- the docs, behind the login


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, me: CounsellorDep) -> dict[str, Any]:
    return request.app.openapi()


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs(request: Request, me: CounsellorDep) -> Response:
    """The API reference, rendered here from the OpenAPI schema: no script from elsewhere
    runs on the console's origin."""
    schema = request.app.openapi()
    operations = [
        {"method": method.upper(), "path": path, "body": _body(schema, operation), **operation}
        for path, methods in schema.get("paths", {}).items()
        for method, operation in methods.items()
    ]
    return render(request, "api_docs.html", me=me, schema=schema, operations=operations)


def _body(schema: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    """The request body's media type, model name and fields (* = required), for the docs page."""
    content = (operation.get("requestBody") or {}).get("content") or {}
    for media_type, spec in content.items():
        ref = (spec.get("schema") or {}).get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        model = schema.get("components", {}).get("schemas", {}).get(name, {})
        required = set(model.get("required", []))
        fields = [
            f"{field}*" if field in required else field for field in model.get("properties", {})
        ]
        return {"media_type": media_type, "model": name or "object", "fields": fields}
    return None
