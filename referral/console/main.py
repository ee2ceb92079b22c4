"""The counsellor console (port 8080): pages for people, the same actions as JSON under /api/."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from hotline.logs import setup_logging
from hotline.settings import get_settings
from referral.console import api, auth, cases, errors, events, supervisor
from referral.console.deps import db_dep

STATIC = Path(__file__).parent / "static"
ROUTERS = (auth.router, cases.router, events.router, supervisor.router, api.router)


def create_app() -> FastAPI:
    setup_logging(get_settings().log_level)
    # The API docs are served by api.py behind the login, not by FastAPI's open defaults.
    app = FastAPI(title="Hotline console", docs_url=None, openapi_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        try:
            db_dep(get_settings()).ping()
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return JSONResponse({"redis": False}, status_code=503)
        return JSONResponse({"redis": True})

    return app
