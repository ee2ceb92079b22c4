"""The counsellor console (port 8080): pages for people, the same actions as JSON under /api/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline import metrics
from hotline.logs import setup_logging
from hotline.settings import get_settings
from hotline.slow_clients import BodyTimeout
from referral.console import api, auth, cases, errors, events, supervisor
from referral.console.deps import db_dep, settings_dep

STATIC = Path(__file__).parent / "static"
ROUTERS = (auth.router, cases.router, events.router, supervisor.router, api.router)

# Scripts, styles and requests from this origin only, no inline script, never in a frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin only: the language switch goes back by the Referer; no other site learns a case id.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """Every answer gets the headers above; every answer but the static files is no-store, so
    after sign-out the Back button shows no case, and no shared cache keeps one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        secure = scope.get("scheme") == "https" or any(
            name == b"x-forwarded-proto" and value == b"https"
            for name, value in scope.get("headers", ())
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if not static:
                    headers["Cache-Control"] = "no-store"
                if secure:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app() -> FastAPI:
    setup_logging(get_settings().log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The settings the routes get (tests hand in their own), checked before serving anyone.
        app.dependency_overrides.get(settings_dep, settings_dep)().require("console")
        yield

    # The API docs are served by api.py behind the login, not by FastAPI's open defaults.
    app = FastAPI(
        title="Hotline console", docs_url=None, openapi_url=None, redoc_url=None, lifespan=lifespan
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> Response:
        # Starlette answers a failure from its outermost middleware, outside SecurityHeaders,
        # so the headers go on here; the traceback is logged by the server (masked).
        return PlainTextResponse(
            "Something went wrong. Try again in a moment.",
            status_code=500,
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )

    # GET /metrics is answered by the middleware ahead of the routes and the login (Prometheus
    # signs in nowhere): the referral queue's state as counts and ages by risk level, and the
    # request counts per route template; never a case id, a name or anything a person wrote.
    async def exposition() -> bytes:
        settings = app.dependency_overrides.get(settings_dep, settings_dep)()
        return await metrics.render_in_thread(metrics.ReferralState(db_dep(settings)))

    app.add_middleware(metrics.MetricsMiddleware, service="console", exposition=exposition)
    app.add_middleware(SecurityHeaders)
    # Outermost: a trickled body is cut before a session or a page waits on it.
    app.add_middleware(BodyTimeout)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        try:
            db_dep(get_settings()).ping()
        except Exception:
            return JSONResponse({"redis": False}, status_code=503)
        return JSONResponse({"redis": True})

    return app
