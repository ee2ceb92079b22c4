"""Sign in and sign out. Failed sign-ins count per name (accounts.py) and per address.

Every sign-in, refusal, lockout and sign-out is in the account trail (trail.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hotline import keys
from referral import accounts, rota
from referral.console import sessions, trail
from referral.console.deps import ClockDep, CounsellorDep, DbDep, SessionClockDep
from referral.console.pages import render

router = APIRouter()

# Per client address, so one machine cannot walk through many names.
ADDRESS_ATTEMPTS, ADDRESS_WINDOW = 30, 15 * 60


def _secure(request: Request) -> bool:
    """Secure cookies behind HTTPS, including behind a TLS-terminating proxy."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return render(request, "login.html", me=None)


@router.post("/login")
def login(
    request: Request,
    db: DbDep,
    clock: ClockDep,
    session_clock: SessionClockDep,
    name: str = Form(...),
    password: str = Form(...),
) -> Response:
    address = request.client.host if request.client else "unknown"
    attempts_key = keys.login_attempts(address)
    attempts = db.incr(attempts_key)
    if attempts == 1:
        db.expire(attempts_key, ADDRESS_WINDOW)
    wanted = name.strip().lower()
    known = accounts.get(db, wanted) is not None
    subject = wanted if known else trail.UNKNOWN
    was_locked = accounts.locked(db, wanted)
    counsellor = accounts.authenticate(db, name, password) if attempts <= ADDRESS_ATTEMPTS else None
    if counsellor is None:
        reason = (
            "throttled" if attempts > ADDRESS_ATTEMPTS else "locked" if was_locked else "refused"
        )
        trail.account_event(
            db,
            "sign_in_refused",
            actor=subject,
            account=subject,
            at=clock(),
            reason=reason,
            address=address,
        )
        if known and not was_locked and accounts.locked(db, wanted):
            trail.account_event(
                db, "locked_out", actor=subject, account=subject, at=clock(), address=address
            )
        page = render(request, "login.html", me=None, error_key="bad_login")
        page.status_code = 401
        return page
    db.delete(attempts_key)
    # A session the browser still carried is ended, so a sign-in always starts a fresh one.
    sessions.end(db, request.cookies.get(sessions.COOKIE))
    token = sessions.start(db, counsellor.name, session_clock())
    trail.account_event(
        db, "signed_in", actor=counsellor.name, account=counsellor.name, at=clock(), address=address
    )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=sessions.LIFETIME_SECONDS,
    )
    return response


@router.post("/logout")
async def logout(
    request: Request, db: DbDep, clock: ClockDep, session_clock: SessionClockDep
) -> Response:
    token = request.cookies.get(sessions.COOKIE)
    session = sessions.load(db, token, session_clock())
    offered = (await request.form()).get("csrf_token")
    if session and sessions.csrf_ok(session, offered if isinstance(offered, str) else None):
        sessions.end(db, token)
        rota.leave(db, session["counsellor"])
        trail.account_event(
            db, "signed_out", actor=session["counsellor"], account=session["counsellor"], at=clock()
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE)
    # The pages are no-store already; this also drops anything a browser kept regardless.
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@router.post("/me/language", include_in_schema=False)
def choose_language(
    request: Request, me: CounsellorDep, db: DbDep, language: str = Form("pt")
) -> Response:
    """Each counsellor picks the console's language (Portuguese or English)."""
    accounts.set_language(db, me.name, language)
    back = request.headers.get("referer", "/")
    # Only back to a page of this console, never to an address a link could plant.
    path = "/" + back.split("://", 1)[-1].partition("/")[2] if "://" in back else "/"
    return RedirectResponse(
        path if path.startswith("/") and not path.startswith("//") else "/", status_code=303
    )
