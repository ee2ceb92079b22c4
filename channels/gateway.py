"""The Twilio webhook (port 8000): verify, drop duplicates, append to the inbound stream, answer at once.

The bot never runs inside the webhook: a message is stored durably and Twilio gets its empty
TwiML in a few milliseconds; workers answer through the REST API later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import redis
import redis.asyncio
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from channels import delivery, twilio_adapter
from channels.consumer import backlog_async
from channels.inbound import InboundEntry, InboundQueue
from hotline import keys, metrics
from hotline.ids import conversation_id, seal
from hotline.logs import setup_logging
from hotline.rasa import RasaClient
from hotline.settings import Settings, get_settings
from hotline.slow_clients import BodyTimeout
from hotline.store import connect, connect_async

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024


@dataclass
class Gateway:
    settings: Settings
    db: redis.asyncio.Redis
    queue: InboundQueue
    rasa: RasaClient

    def public_url(self, request: Request) -> str:
        """The URL Twilio signed: ours as the internet sees it, not as the proxy forwarded it."""
        url = self.settings.public_url.rstrip("/") + request.url.path
        return f"{url}?{request.url.query}" if request.url.query else url


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (without reading all of a huge one)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _twiml() -> Response:
    return Response(twilio_adapter.TWIML_EMPTY, media_type=twilio_adapter.TWIML_TYPE)


async def _signed_form(request: Request, gateway: Gateway) -> dict[str, str] | Response:
    raw = await _read_limited(request, MAX_REQUEST_BYTES)
    if raw is None:
        log.warning("webhook refused: body over %d bytes", MAX_REQUEST_BYTES)
        return Response("request too large", status_code=413)
    form = twilio_adapter.parse_form(raw)
    token = gateway.settings.twilio_auth_token.get_secret_value()
    signature = request.headers.get("X-Twilio-Signature")
    if not twilio_adapter.signature_valid(token, gateway.public_url(request), form, signature):
        log.warning(
            "webhook refused: %s signature on %s",
            "bad" if signature else "missing",
            request.url.path,
        )
        return Response("invalid signature", status_code=403)
    return form


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway; tests hand in their own settings instead of patching globals."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = settings or get_settings()
        if settings is None:  # the process itself (tests hand in theirs and keep their logs)
            setup_logging(current.log_level)
        # Refuses to start without its secrets: an empty HOTLINE_SECRET would make ids
        # unkeyed hashes of the number.
        current.require("gateway")
        db = connect_async(current)
        app.state.gateway = Gateway(current, db, InboundQueue(db, current), RasaClient(current))
        yield
        await app.state.gateway.rasa.aclose()
        await db.aclose()

    app = FastAPI(
        title="hotline gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    # Metrics: GET /metrics (answered by the middleware, which counts every other request) with
    # the pipeline's state read from Redis per scrape and Rasa's answer to a probe. Reached on
    # loopback only: HAProxy passes nothing but the Twilio paths and /healthz to the gateway.
    async def exposition() -> bytes:
        gateway: Gateway = app.state.gateway
        if getattr(app.state, "metrics_db", None) is None:
            app.state.metrics_db = connect(gateway.settings)  # blocking, read in a thread
        rasa = await metrics.probe_rasa(gateway.rasa.healthy)
        return await metrics.render_in_thread(rasa, metrics.PipelineState(app.state.metrics_db))

    app.add_middleware(metrics.MetricsMiddleware, service="gateway", exposition=exposition)
    # Added last, so outermost: a trickled body is cut before anything else waits on it.
    app.add_middleware(BodyTimeout)

    @app.post("/twilio/messages")
    async def incoming_message(request: Request, gateway: GatewayDep) -> Response:
        form = await _signed_form(request, gateway)
        if isinstance(form, Response):
            return form
        message = twilio_adapter.inbound_message(form)
        if message is None:
            log.warning("webhook without MessageSid or From ignored")
            return Response("not a message", status_code=400)
        secrets = gateway.settings
        entry = InboundEntry(
            conversation_id=conversation_id(message.address, secrets.secret.get_secret_value()),
            sealed_address=seal(message.address, secrets.fernet_key.get_secret_value()),
            channel=message.channel,
            body=message.body,
            received_at=time.time(),
            message_sid=message.message_sid,
            media_count=message.media_count,
            truncated=message.truncated,
        )
        try:
            entry_id = await gateway.queue.add(
                entry, request.headers.get("I-Twilio-Idempotency-Token")
            )
        except redis.RedisError as error:
            # Not stored (or not yet on the replicas it must be on), so not acknowledged:
            # Twilio (or its retry) must try again.
            log.error("message %s not stored: Redis %s", message.message_sid, type(error).__name__)
            return Response("temporarily unavailable", status_code=503)
        if entry_id is None:
            log.info("duplicate webhook for %s dropped", message.message_sid)
        else:
            log.info(
                "%s message %s queued for %s%s%s",
                message.channel,
                message.message_sid,
                entry.conversation_id,
                " (media only)" if message.media_only else "",
                " (truncated)" if message.truncated else "",
            )
        return _twiml()

    @app.post("/twilio/status")
    async def delivery_status(request: Request, gateway: GatewayDep) -> Response:
        form = await _signed_form(request, gateway)
        if isinstance(form, Response):
            return form
        update = twilio_adapter.status_update(form)
        if update is None:
            return Response("not a status callback", status_code=400)
        try:
            await delivery.advance(gateway.db, update.message_sid, update.status, update.error_code)
        except redis.RedisError as error:
            log.error(
                "status of %s not recorded: Redis %s", update.message_sid, type(error).__name__
            )
            return Response("temporarily unavailable", status_code=503)
        return _twiml()

    @app.get("/healthz")
    async def healthz(gateway: GatewayDep) -> JSONResponse:
        states: dict[str, str] = {}
        inbound: dict[str, object] | None = None
        try:
            redis_ok = bool(await gateway.db.ping())
            # What the supervisor of `make run` last saw of each process (absent under systemd,
            # where `systemctl --failed` says it).
            states = await gateway.db.hgetall(keys.SUPERVISION_KEY)
            # People's messages not answered yet: how many, and how long the oldest has waited.
            # ("workers": the workers' consumer group, channels.worker.GROUP.)
            inbound = (await backlog_async(gateway.db, keys.INBOUND_STREAM, "workers")).as_dict()
        except redis.RedisError:
            redis_ok = False
        rasa_ok = await gateway.rasa.healthy()
        down = {
            name
            for name, state in states.items()
            if state not in ("RUNNING", "STARTING", "FLAPPING")
        }
        down |= ({"redis"} if not redis_ok else set()) | ({"rasa"} if not rasa_ok else set())
        # Messages are safe as long as Redis takes them; Rasa being down only delays answers.
        body = {
            "status": "ok" if not down else "degraded",
            "redis": redis_ok,
            "rasa": rasa_ok,
            "down": sorted(down),
            "unstable": sorted(name for name, state in states.items() if state == "FLAPPING"),
            "inbound": inbound,
        }
        return JSONResponse(body, status_code=200 if redis_ok else 503)

    return app


app = create_app()
