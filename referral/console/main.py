"""The counsellor console (port 8080): pages for people, the same actions as JSON under /api/."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from hotline.logs import setup_logging
from hotline.settings import get_settings
from referral.console import auth
from referral.console.deps import SignInRequired, db_dep

STATIC = __import__("pathlib").Path(__file__).parent / "static"


def create_app() -> FastAPI:
    setup_logging(get_settings().log_level)
    app = FastAPI(title="Hotline console", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth.router)
    for module in ("cases", "supervisor", "api"):
        try:
            router = __import__(f"referral.console.{module}", fromlist=["router"]).router
        except ModuleNotFoundError:
            continue
        app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        try:
            db_dep(get_settings()).ping()
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return JSONResponse({"redis": False}, status_code=503)
        return JSONResponse({"redis": True})

    return app
