"""The action server as the hotline runs it: rasa-sdk's app behind a bearer token and size limits.

The actions open cases and record the risk screen's verdicts for whatever conversation id
they are sent, so only Rasa may call them: Rasa shows `HOTLINE_ACTION_TOKEN` in an
Authorization header (endpoints.yml) and any other caller on the machine gets 401. A body
is refused past `MAX_BODY_BYTES`, compressed or not (rasa-sdk inflates `deflate` bodies with
no bound, so a few kilobytes could expand to gigabytes). `/health` stays open for probes, and
`/metrics` for Prometheus on the host (the time of each action by name; nothing a person said).

    python -m actions.server --port 5055
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import time
import zlib
from typing import Any

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from hotline import metrics
from hotline.logs import setup_logging
from hotline.settings import Settings, UnsafeSettings

log = logging.getLogger(__name__)

# A tracker is compacted to its last 240 events past 256 KB (channels/history.py), and Rasa
# sends it whole with each call: 4 MB leaves room for that and refuses anything absurd.
MAX_BODY_BYTES = 4 * 1024 * 1024
OPEN_PATHS = frozenset({"/health", metrics.PATH})


class TimedExecutor(ActionExecutor):
    """rasa-sdk's executor, timing every action it runs (hotline_action_seconds)."""

    async def run(self, action_call: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        name = action_call.get("next_action") or ""
        # Label values from a fixed set: the registered actions' names.
        label = name if name in self.actions else "unknown"
        started, outcome = time.perf_counter(), "error"
        try:
            result = await super().run(action_call, *args, **kwargs)
            outcome = "ok"
            return result
        finally:
            metrics.ACTION_SECONDS.labels(label, outcome).observe(time.perf_counter() - started)


def _authorised(request: Request, token: str) -> bool:
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def _inflate_bounded(body: bytes) -> bytes | None:
    """The inflated body, or None when it would pass the limit (or is not deflate at all)."""
    inflater = zlib.decompressobj()
    try:
        inflated = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error:
        return None
    return None if len(inflated) > MAX_BODY_BYTES or inflater.unconsumed_tail else inflated


def build_app(token: str) -> Sanic:
    if not token:
        raise UnsafeSettings("the action server refuses to start: HOTLINE_ACTION_TOKEN is empty")
    executor = TimedExecutor()
    executor.register_package("actions")
    app = create_app(executor, cors_origins=None)
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.ACCESS_LOG = False

    # rasa-sdk answers every exception with 500 and the request body; a refusal is not a fault.
    @app.exception(PayloadTooLarge)
    async def too_large(request: Request, exception: Exception) -> HTTPResponse:
        return response.json({"error": "body too large"}, status=413)

    @app.get(metrics.PATH)
    async def exposition(request: Request) -> HTTPResponse:
        return response.raw(metrics.render(), content_type=metrics.CONTENT_TYPE_LATEST)

    @app.on_request
    async def guard(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        if not _authorised(request, token):
            log.warning("refused a call to %s without the action token", request.path)
            return response.json({"error": "unauthorised"}, status=401)
        if request.headers.get("content-encoding") == "deflate":
            inflated = _inflate_bounded(request.body)
            if inflated is None:
                return response.json({"error": "body too large or not deflate"}, status=413)
            # rasa-sdk reads an uncompressed body as JSON: hand it the bounded inflation.
            request.body = inflated
            del request.headers["content-encoding"]
        return None

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    try:
        settings = Settings().require("actions")
        app = build_app(settings.action_token.get_secret_value())
    except UnsafeSettings as refusal:
        raise SystemExit(str(refusal)) from None
    setup_logging(settings.log_level)
    # One process: the actions wait on Redis, not the CPU, and a worker manager would only add
    # a second process to supervise. Internal, so loopback unless SANIC_HOST says otherwise.
    host = os.environ.get("SANIC_HOST", "127.0.0.1")
    app.run(host=host, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
