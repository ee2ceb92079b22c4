"""The bot's words at run time: Rasa's NLG endpoint, answered from bot/*.yml as it is now.

Rasa asks this service for every `utter_*` response (endpoints.yml `nlg`), so an editor's
change to a response is live at the next message without retraining: the trained model
decides *which* response, these files say *what* it says. The same files are the domain Rasa
trains and validates with, so a new response name still needs `make train`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from hotline import metrics, yamlfiles
from hotline.language import LANGUAGES
from hotline.logs import setup_logging
from hotline.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

# The domain folder Rasa trained with; HOTLINE_BOT_DIR points elsewhere (the tests use a copy).
DOMAIN = Path(os.environ.get("HOTLINE_BOT_DIR") or PROJECT_ROOT / "bot")
DEFAULT_LANGUAGE = "pt"

Variations = dict[str, list[dict[str, Any]]]  # language -> the variations for it


def _parse(data: Any) -> dict[str, Variations]:
    responses: dict[str, Variations] = {}
    for name, variations in ((data or {}).get("responses") or {}).items():
        for variation in variations or []:
            conditions = variation.get("condition") or []
            language = next(
                (c.get("value") for c in conditions if c.get("name") == "language"),
                DEFAULT_LANGUAGE,
            )
            body = {k: v for k, v in variation.items() if k != "condition"}
            responses.setdefault(name, {}).setdefault(language, []).append(body)
    return responses


def responses(folder: Path = DOMAIN) -> dict[str, Variations]:
    """Every response in the domain folder, re-read when a file changes."""
    merged: dict[str, Variations] = {}
    for path in sorted(folder.glob("*.yml")):
        merged.update(yamlfiles.load(path, _parse))
    return merged


def render(
    name: str, language: str | None, slots: Mapping[str, Any], folder: Path = DOMAIN
) -> dict[str, Any]:
    """The response in the person's language (Portuguese when it has none), slots filled."""
    variations = responses(folder).get(name)
    if not variations:
        raise KeyError(name)
    chosen = (
        variations.get(language if language in LANGUAGES else DEFAULT_LANGUAGE)
        or variations[DEFAULT_LANGUAGE]
    )
    body = dict(random.choice(chosen))
    if isinstance(body.get("text"), str):
        # Rasa's own {slot} filling, so a response reads the same either way.
        values = {k: ("" if v is None else v) for k, v in slots.items()}
        try:
            body["text"] = body["text"].format(**values)
        except (KeyError, IndexError, ValueError):
            pass  # a brace that is not a slot is left as written
    return body


def serve() -> FastAPI:
    """The process's app (`uvicorn --factory actions.nlg:serve`): its logs masked, like all."""
    setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    return create_app()


def create_app() -> FastAPI:
    app = FastAPI(title="Hotline NLG", docs_url=None, redoc_url=None, openapi_url=None)
    # Rasa asks for every response here, so its request times are the NLG's share of a turn.
    app.add_middleware(metrics.MetricsMiddleware, service="nlg")

    @app.post("/nlg")
    async def nlg(request: Request) -> dict[str, Any]:
        try:
            payload = await request.json()
            name = payload.get("response") or payload.get("template")
            slots = (payload.get("tracker") or {}).get("slots") or {}
        except (ValueError, AttributeError) as error:
            raise HTTPException(400, "not an NLG request") from error
        try:
            return render(str(name), slots.get("language"), slots)
        except KeyError as error:
            log.error("NLG asked for a response that is not in bot/: %s", name)
            raise HTTPException(404, "no such response") from error

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"responses": bool(responses())}

    return app
