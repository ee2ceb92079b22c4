"""Every refusal the console gives, in one place: JSON under /api/, a page or a message otherwise.

Routes raise; they never catch to choose how a refusal looks. The API's JSON keeps the
queue's codes (`not_found`, `already_claimed` …) and, for the console's own refusals, the
English words as `detail`. A person in a browser gets the reason in their own language.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from referral.console import sessions
from referral.console.i18n import translator
from referral.console.pages import render
from referral.queue import (
    AlreadyClaimed,
    CaseClosed,
    CaseNotFound,
    NotYourCase,
    OptedOut,
    ReferralError,
)


class Refused(Exception):
    """A request the console will not meet; `key` names the words that say why."""

    def __init__(self, status_code: int, key: str, **values: str) -> None:
        super().__init__(key)
        self.status_code, self.key, self.values = status_code, key, values


def describe(error: ReferralError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the JSON body for a refused request about a case."""
    body: dict[str, Any] = {"detail": str(error)}
    case_id = getattr(error, "case_id", None)
    if case_id:
        body["case_id"] = case_id
    if isinstance(error, CaseNotFound):
        return status.HTTP_404_NOT_FOUND, {**body, "error": "not_found"}
    if isinstance(error, AlreadyClaimed):
        return status.HTTP_409_CONFLICT, {
            **body,
            "error": "already_claimed",
            "claimed_by": error.claimed_by,
        }
    if isinstance(error, CaseClosed):
        return status.HTTP_409_CONFLICT, {**body, "error": "closed"}
    if isinstance(error, OptedOut):
        return status.HTTP_409_CONFLICT, {**body, "error": "opted_out"}
    if isinstance(error, NotYourCase):
        return status.HTTP_403_FORBIDDEN, {
            **body,
            "error": "not_your_case",
            "claimed_by": error.claimed_by,
        }
    return status.HTTP_422_UNPROCESSABLE_CONTENT, {**body, "error": "invalid"}


def words_for(error: ReferralError) -> tuple[str, dict[str, str]]:
    """The words (catalogue key and values) that tell a counsellor why."""
    if isinstance(error, CaseNotFound):
        return "case_not_found", {"id": error.case_id}
    if isinstance(error, AlreadyClaimed):
        return "already_claimed", {"who": error.claimed_by}
    if isinstance(error, CaseClosed):
        return "case_is_closed", {}
    if isinstance(error, OptedOut):
        return "opted_out_refused", {}
    if isinstance(error, NotYourCase):
        return (
            ("not_your_case", {"who": error.claimed_by})
            if error.claimed_by
            else ("claim_first", {})
        )
    return "invalid_request", {"reason": str(error)}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem_page(request: Request, status_code: int, key: str, **values: str) -> Response:
    """A page of the console that says why, with the header and the way back."""
    me = getattr(request.state, "me", None)  # set once the counsellor was recognised
    title = "forbidden_title" if status_code == status.HTTP_403_FORBIDDEN else "problem_title"
    page = render(request, "problem.html", me=me, title_key=title, message_key=key, values=values)
    page.status_code = status_code
    return page


def install(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def _refused(request: Request, error: Refused) -> Response:
        if _is_api(request):
            detail = translator("en")(error.key, **error.values)
            return JSONResponse({"detail": detail}, status_code=error.status_code)
        if error.status_code == status.HTTP_401_UNAUTHORIZED:
            return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
        return problem_page(request, error.status_code, error.key, **error.values)

    @app.exception_handler(HTTPException)
    async def _no_such_page(request: Request, error: HTTPException) -> Response:
        # FastAPI's own refusals (no such route …): JSON for the API, a page for a person.
        if _is_api(request) or error.status_code != status.HTTP_404_NOT_FOUND:
            return await http_exception_handler(request, error)
        return problem_page(request, error.status_code, "page_not_found")

    @app.exception_handler(ReferralError)
    async def _case_refused(request: Request, error: ReferralError) -> Response:
        code, body = describe(error)
        if _is_api(request):
            return JSONResponse(body, status_code=code)
        key, values = words_for(error)
        if request.method in ("GET", "HEAD"):
            return problem_page(request, code, key, **values)
        # A form: back to the case (or the queue) with the reason on top, so a reload
        # never posts it again.
        db = getattr(request.state, "db", None)
        if db is not None:
            sessions.flash(db, request.cookies.get(sessions.COOKIE), key, "error", **values)
        case_id = getattr(error, "case_id", None)
        target = f"/cases/{case_id}" if case_id and not isinstance(error, CaseNotFound) else "/"
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
