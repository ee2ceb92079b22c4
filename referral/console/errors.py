"""How a refused request about a case reads: JSON for the API, a message on the page otherwise."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response

from referral.console import sessions
from referral.console.casework import InvalidRequest
from referral.queue import AlreadyClaimed, CaseClosed, CaseNotFound, NotYourCase, ReferralError


def describe(error: ReferralError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the JSON body for a refused request."""
    body: dict[str, Any] = {"detail": str(error)}
    case_id = getattr(error, "case_id", None)
    if case_id:
        body["case_id"] = case_id
    if isinstance(error, CaseNotFound):
        return status.HTTP_404_NOT_FOUND, {**body, "error": "not_found"}
    if isinstance(error, AlreadyClaimed):
        return status.HTTP_409_CONFLICT, {**body, "error": "already_claimed", "claimed_by": error.claimed_by}
    if isinstance(error, CaseClosed):
        return status.HTTP_409_CONFLICT, {**body, "error": "closed"}
    if isinstance(error, NotYourCase):
        return status.HTTP_403_FORBIDDEN, {**body, "error": "not_your_case", "claimed_by": error.claimed_by}
    return status.HTTP_422_UNPROCESSABLE_CONTENT, {**body, "error": "invalid"}


def flash_for(error: ReferralError) -> tuple[str, dict[str, str]]:
    """The words (i18n key and values) that tell a counsellor why, on the page."""
    if isinstance(error, CaseNotFound):
        return "case_not_found", {"id": error.case_id}
    if isinstance(error, AlreadyClaimed):
        return "already_claimed", {"who": error.claimed_by}
    if isinstance(error, CaseClosed):
        return "case_is_closed", {}
    if isinstance(error, NotYourCase):
        return ("not_your_case", {"who": error.claimed_by}) if error.claimed_by else ("claim_first", {})
    if isinstance(error, InvalidRequest):
        return "invalid_request", {"reason": str(error)}
    return "invalid_request", {"reason": str(error)}


def install(app: FastAPI) -> None:
    @app.exception_handler(ReferralError)
    async def _refused(request: Request, error: ReferralError) -> Response:
        code, body = describe(error)
        if request.url.path.startswith("/api/"):
            return JSONResponse(body, status_code=code)
        # A form: back to the case (or the queue) with the reason on top.
        key, values = flash_for(error)
        db = getattr(request.state, "db", None)  # set when the counsellor was recognised
        if db is not None:
            sessions.flash(db, request.cookies.get(sessions.COOKIE), key, "error", **values)
        case_id = getattr(error, "case_id", None)
        target = f"/cases/{case_id}" if case_id and not isinstance(error, CaseNotFound) else "/"
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
