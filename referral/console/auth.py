"""Sign in and sign out. Failed sign-ins count per name (accounts.py) and per address."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from referral import accounts, rota
from referral.console import sessions
from referral.console.deps import CounsellorDep, DbDep
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
def login(request: Request, db: DbDep, name: str = Form(...), password: str = Form(...)) -> Response:
    address = request.client.host if request.client else "unknown"
    attempts_key = f"hotline:login-attempts:{address}"
    attempts = db.incr(attempts_key)
    if attempts == 1:
        db.expire(attempts_key, ADDRESS_WINDOW)
    counsellor = accounts.authenticate(db, name, password) if attempts <= ADDRESS_ATTEMPTS else None
    if counsellor is None:
        page = render(request, "login.html", me=None, error_key="bad_login")
        page.status_code = 401
        return page
    db.delete(attempts_key)
    token = sessions.start(db, counsellor.name)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        sessions.COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
        max_age=sessions.IDLE_TIMEOUT_SECONDS * 16,
    )
    return response


@router.post("/logout")
async def logout(request: Request, db: DbDep) -> Response:
    token = request.cookies.get(sessions.COOKIE)
    session = sessions.load(db, token)
    form = await request.form()
    if session and sessions.csrf_ok(session, form.get("csrf_token")):
        sessions.end(db, token)
        rota.leave(db, session["counsellor"])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE)
    return response


@router.post("/me/language", include_in_schema=False)
def choose_language(request: Request, me: CounsellorDep, db: DbDep, language: str = Form("pt")) -> Response:
    """Each counsellor picks the console's language (Portuguese or English)."""
    accounts.set_language(db, me.name, language)
    back = request.headers.get("referer", "/")
    # Only back to a page of this console, never to an address a link could plant.
    path = "/" + back.split("://", 1)[-1].partition("/")[2] if "://" in back else "/"
    return RedirectResponse(path if path.startswith("/") and not path.startswith("//") else "/", status_code=303)
