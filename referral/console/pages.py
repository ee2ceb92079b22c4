"""Template rendering with the counsellor's interface language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from referral.console.i18n import translator

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def render(
    request: Request, template: str, *, me: Any, error_key: str | None = None, **context: Any
) -> HTMLResponse:
    """A console page: `t` speaks the counsellor's language (before sign-in, the browser's)."""
    t = translator(me.language if me else _browser_language(request))
    return templates.TemplateResponse(
        request,
        template,
        {
            "me": me,
            "t": t,
            "lang": t.language,
            "csrf": getattr(request.state, "csrf", ""),
            "error": t(error_key) if error_key else None,
            **context,
        },
    )


def _browser_language(request: Request) -> str:
    return "pt" if request.headers.get("accept-language", "").lower().startswith("pt") else "en"
