"""A stand-in for Twilio in dev mode (port 8025): the Messages REST API and a phone page.

The real `twilio` client sends to it (only its base URL differs from production); it keeps
the messages in Redis, calls the status callback as Twilio does, and serves a phone at `/`
that signs and posts webhooks to the gateway exactly like Twilio, showing the replies live.
It is Twilio's side of the line, so it holds numbers; it never logs them. Like Twilio, it
deletes a message resource on DELETE (an erasure asks it to: channels.twilio_erasure).

It refuses to start outside dev mode and the test suite: it signs whatever it is asked to
with the Twilio token, so in production its phone page would forge webhooks from any number.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import redis.asyncio
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from channels.sandbox.page import PHONE_PAGE
from channels.twilio_adapter import parse_form, sign
from hotline import keys, sms
from hotline.logs import setup_logging
from hotline.settings import Settings, UnsafeSettings, get_settings
from hotline.store import connect_async

log = logging.getLogger(__name__)

API = "/2010-04-01/Accounts/{account_sid}"
MESSAGES = keys.SANDBOX_MESSAGES_KEY  # every message's sid, newest first
EVENTS = keys.SANDBOX_EVENTS_CHANNEL  # pub/sub: one JSON line per message sent to a phone
OPTED_OUT = keys.SANDBOX_OPTED_OUT_KEY  # numbers Twilio would refuse with 21610
# hash: status, remaining (the next N creates fail like Twilio would); slow, slow_remaining,
# slow_skip (after `slow_skip` creates, the next N are taken, then answered after `slow` s)
FAULTS = keys.SANDBOX_FAULTS_KEY
UNREACHABLE = keys.SANDBOX_UNREACHABLE_KEY  # numbers whose messages end "undelivered" (30003)
ATTEMPTS = keys.SANDBOX_ATTEMPTS_KEY  # how many creates were asked for, failed ones included
KEEP = 5000
# Statuses of a message Twilio is still working on: it refuses to delete those (20009).
UNFINISHED = {"accepted", "scheduled", "queued", "sending", "receiving"}
_NUMBER = re.compile(r"^(whatsapp:)?\+[1-9]\d{7,14}$")
# Twilio's magic test numbers: https://www.twilio.com/docs/iam/test-credentials
_MAGIC = {"+15005550001": 21211, "+15005550009": 21614, "+15005550004": 21610}


def message_key(sid: str) -> str:
    return keys.sandbox_message(sid)


def thread_key(address: str) -> str:
    return keys.sandbox_thread(address)


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def _now_rfc2822() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


class Sandbox:
    def __init__(
        self, settings: Settings, db: redis.asyncio.Redis, http: httpx.AsyncClient
    ) -> None:
        self.settings, self.db, self.http = settings, db, http
        self._tasks: set[asyncio.Task] = set()

    def resource(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as Twilio's JSON shows it."""
        sid, account = message["sid"], self.settings.twilio_sid
        return {
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": message["body"],
            "date_created": message["date_created"],
            "date_sent": message.get("date_sent"),
            "date_updated": message["date_updated"],
            "direction": message["direction"],
            "error_code": message.get("error_code"),
            "error_message": None,
            "from": message["from"],
            "messaging_service_sid": None,
            "num_media": message.get("num_media", "0"),
            "num_segments": message["num_segments"],
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": message["status"],
            "to": message["to"],
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json"
            },
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
        }

    async def store(self, message: dict[str, Any]) -> None:
        phone = message["to"] if message["direction"] != "inbound" else message["from"]
        async with self.db.pipeline(transaction=True) as pipe:
            pipe.set(message_key(message["sid"]), json.dumps(message))
            pipe.lpush(MESSAGES, message["sid"])
            pipe.ltrim(MESSAGES, 0, KEEP - 1)
            pipe.rpush(thread_key(phone), message["sid"])
            pipe.ltrim(thread_key(phone), -200, -1)
            await pipe.execute()

    async def forget(self, message: dict[str, Any]) -> None:
        phone = message["to"] if message["direction"] != "inbound" else message["from"]
        async with self.db.pipeline(transaction=True) as pipe:
            pipe.delete(message_key(message["sid"]))
            pipe.lrem(MESSAGES, 0, message["sid"])
            pipe.lrem(thread_key(phone), 0, message["sid"])
            await pipe.execute()

    async def load(self, sid: str) -> dict[str, Any] | None:
        raw = await self.db.get(message_key(sid))
        return json.loads(raw) if raw else None

    async def set_status(self, sid: str, status: str) -> dict[str, Any] | None:
        message = await self.load(sid)
        if message is None:
            return None
        message["status"], message["date_updated"] = status, _now_rfc2822()
        if status in ("sent", "delivered") and not message.get("date_sent"):
            message["date_sent"] = message["date_updated"]
        await self.db.set(message_key(sid), json.dumps(message))
        return message

    def later(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def report_delivery(self, sid: str, callback: str) -> None:
        """sent, then delivered, each with a signed status callback, as Twilio does
        (undelivered with error 30003 for a number marked unreachable)."""
        stored = await self.load(sid)
        unreachable = stored is not None and bool(
            await self.db.sismember(UNREACHABLE, stored["to"])
        )
        for status in ("sent", "undelivered" if unreachable else "delivered"):
            await asyncio.sleep(0.01)
            message = await self.set_status(sid, status)
            if not message or not callback:
                continue
            form = {
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "AccountSid": self.settings.twilio_sid,
                "From": message["from"],
                "To": message["to"],
                "ApiVersion": "2010-04-01",
            }
            if status == "undelivered":
                form["ErrorCode"] = "30003"  # Unreachable destination handset
            try:
                await self.post_signed(callback, form)
            except httpx.HTTPError as error:
                log.warning("status callback for %s failed: %s", sid, type(error).__name__)

    async def post_signed(self, url: str, form: dict[str, str]) -> httpx.Response:
        token = self.settings.twilio_auth_token.get_secret_value()
        headers = {
            "X-Twilio-Signature": sign(token, url, form),
            "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1 (hotline sandbox)",
        }
        return await self.http.post(url, content=urlencode(form), headers=headers)

    def authorised(self, request: Request, account_sid: str) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        token = self.settings.twilio_auth_token.get_secret_value()
        return user == account_sid and password == token

    async def fault(self) -> JSONResponse | None:
        """A failure the tests asked for (429 or 5xx), as Twilio would answer it."""
        if not await self.db.hexists(FAULTS, "remaining"):
            return None
        if int(await self.db.hincrby(FAULTS, "remaining", -1)) < 0:
            await self.db.hdel(FAULTS, "remaining", "status")
            return None
        status = int(await self.db.hget(FAULTS, "status") or 503)
        return _error(
            status, 20429 if status == 429 else 20500, "Service unavailable (sandbox fault)"
        )

    async def slowness(self) -> float:
        """How long to hold the answer to a create already taken (a slow line to Twilio, the
        moment a sender that dies loses track of a message Twilio has)."""
        if not await self.db.hexists(FAULTS, "slow_remaining"):
            return 0.0
        if int(await self.db.hincrby(FAULTS, "slow_skip", -1)) >= 0:
            return 0.0  # one of the creates answered at once before the slow ones
        if int(await self.db.hincrby(FAULTS, "slow_remaining", -1)) < 0:
            await self.db.hdel(FAULTS, "slow_remaining", "slow", "slow_skip")
            return 0.0
        return float(await self.db.hget(FAULTS, "slow") or 0)


def _sent_filters(query: Any) -> list[tuple[str, datetime]]:
    """Twilio's DateSent filters (`DateSent`, `DateSent<`, `DateSent>`): a day (YYYY-MM-DD)
    or, as the twilio client writes them, a moment (YYYY-MM-DDTHH:MM:SSZ)."""
    found = []
    for name, op in (("DateSent", "="), ("DateSent<", "<"), ("DateSent>", ">")):
        value = query.get(name)
        if not value:
            continue
        form = "%Y-%m-%dT%H:%M:%SZ" if "T" in value else "%Y-%m-%d"
        found.append((op, datetime.strptime(value, form).replace(tzinfo=UTC)))
    return found


def _sent_matches(message: dict[str, Any], filters: list[tuple[str, datetime]]) -> bool:
    if not filters:
        return True
    if not message.get("date_sent"):
        return False  # as at Twilio: a message not sent yet has no sent date to match
    sent = parsedate_to_datetime(message["date_sent"])
    for op, when in filters:
        if op == "=" and sent.date() != when.date():
            return False
        if op == "<" and sent > when:
            return False
        if op == ">" and sent < when:
            return False
    return True


class PhoneMessage(BaseModel):
    channel: str = "sms"
    number: str
    body: str = ""
    media: bool = False


class Thread(BaseModel):
    channel: str = "sms"
    number: str


class NumberFlag(BaseModel):
    number: str
    on: bool = True


class Faults(BaseModel):
    status: int = 503
    count: int = 1


class Slow(BaseModel):
    seconds: float = 1.0
    count: int = 1
    skip: int = 0  # creates answered at once before the slow ones


def _address(channel: str, number: str) -> str:
    number = re.sub(r"[\s\-()]", "", number)
    return f"whatsapp:{number}" if channel == "whatsapp" else number


def refuse_outside_dev(settings: Settings) -> None:
    """Raise unless this is dev mode or the test suite, with no Twilio account in sight."""
    if settings.env not in ("dev", "test") or not settings.dev_mode:
        raise UnsafeSettings(
            "the sandbox runs only in dev mode (HOTLINE_ENV=dev, no TWILIO_ACCOUNT_SID): it would "
            "sign forged webhooks with the real Twilio token"
        )
    settings.require("sandbox")


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = settings or get_settings()
        if settings is None:  # the process itself: its log lines through the masking formatter
            setup_logging(current.log_level)
        refuse_outside_dev(current)
        db = connect_async(current)
        async with httpx.AsyncClient(timeout=10) as http:
            app.state.sandbox = Sandbox(current, db, http)
            yield
        await db.aclose()

    app = FastAPI(
        title="Twilio sandbox", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    def sandbox(request: Request) -> Sandbox:
        return request.app.state.sandbox

    @app.post(API + "/Messages.json")
    async def create_message(account_sid: str, request: Request) -> Response:
        box = sandbox(request)
        if not box.authorised(request, account_sid):
            return _error(401, 20003, "Authenticate")
        await box.db.incr(ATTEMPTS)
        failure = await box.fault()
        if failure is not None:
            return failure
        form = parse_form(await request.body())
        to, sender, body = (
            form.get("To", "").strip(),
            form.get("From", "").strip(),
            form.get("Body", ""),
        )
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        bare = to.removeprefix("whatsapp:")
        if bare in _MAGIC:
            code = _MAGIC[bare]
            return _error(
                400,
                code,
                "Attempt to send to unsubscribed recipient"
                if code == 21610
                else "The 'To' number is not a valid phone number.",
            )
        if not _NUMBER.match(to):
            return _error(400, 21211, "The 'To' number is not a valid phone number.")
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and not form.get("MediaUrl"):
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if await box.db.sismember(OPTED_OUT, to):
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        now, sid, callback = _now_rfc2822(), new_sid(), form.get("StatusCallback", "")
        message: dict[str, Any] = {
            "sid": sid,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "date_created": now,
            "date_updated": now,
            "num_segments": str(sms.segment_count(body)),
            "status_callback": callback,
            "at": time.time(),
        }
        await box.store(message)
        await box.db.publish(
            EVENTS, json.dumps({"sid": message["sid"], "to": to, "at": message["at"]})
        )
        box.later(box.report_delivery(sid, callback))
        delay = await box.slowness()
        if delay:
            await asyncio.sleep(delay)  # taken and stored: only the answer is late
        return JSONResponse(box.resource(message), status_code=201)

    @app.get(API + "/Messages.json")
    async def list_messages(account_sid: str, request: Request) -> Response:
        box = sandbox(request)
        if not box.authorised(request, account_sid):
            return _error(401, 20003, "Authenticate")
        query = request.query_params
        size = min(int(query.get("PageSize", 50)), 1000)
        sent_filters = _sent_filters(query)
        sids = await box.db.lrange(MESSAGES, 0, KEEP - 1)  # newest first, as Twilio lists
        stored = await box.db.mget([message_key(sid) for sid in sids]) if sids else []
        found = []
        for raw in stored:
            if not raw:
                continue
            message = json.loads(raw)
            if query.get("To") and message["to"] != query["To"]:
                continue
            if query.get("From") and message["from"] != query["From"]:
                continue
            if not _sent_matches(message, sent_filters):
                continue
            found.append(box.resource(message))
            if len(found) >= size:
                break
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        return JSONResponse(
            {
                "messages": found,
                "page": 0,
                "page_size": size,
                "start": 0,
                "end": max(0, len(found) - 1),
                "uri": uri,
                "first_page_uri": uri,
                "next_page_uri": None,
                "previous_page_uri": None,
            }
        )

    async def one_message(request: Request, account_sid: str, sid: str) -> dict | JSONResponse:
        """The message a Messages/{sid} request names, or Twilio's error for it."""
        box = sandbox(request)
        if not box.authorised(request, account_sid):
            return _error(401, 20003, "Authenticate")
        message = await box.load(sid)
        if message is None:
            return _error(404, 20404, "The requested resource was not found")
        return message

    @app.get(API + "/Messages/{message_sid}.json")
    async def fetch_message(account_sid: str, message_sid: str, request: Request) -> Response:
        message = await one_message(request, account_sid, message_sid)
        if isinstance(message, JSONResponse):
            return message
        return JSONResponse(sandbox(request).resource(message))

    @app.delete(API + "/Messages/{message_sid}.json")
    async def delete_message(account_sid: str, message_sid: str, request: Request) -> Response:
        """As Twilio: 204 once gone; 20404 if unknown; 20009 while it is still on its way."""
        box, message = sandbox(request), await one_message(request, account_sid, message_sid)
        if isinstance(message, JSONResponse):
            return message
        if message["status"] in UNFINISHED:
            # Twilio documents the code, not the HTTP status; 409 is this stand-in's choice.
            return _error(409, 20009, "Cannot delete this resource before it is complete")
        await box.forget(message)
        return Response(status_code=204)

    # ------------------------------------------------------------- the phone

    @app.get("/", response_class=HTMLResponse)
    async def phone_page(request: Request) -> str:
        return PHONE_PAGE

    @app.post("/phone/send")
    async def phone_send(message: PhoneMessage, request: Request) -> JSONResponse:
        """What Twilio does when a phone texts the hotline: store, sign, post the webhook."""
        box = sandbox(request)
        current = box.settings
        address = _address(message.channel, message.number)
        if not _NUMBER.match(address):
            return JSONResponse({"error": "write the number as +258…"}, status_code=400)
        hotline_number = (
            current.twilio_whatsapp_from
            if message.channel == "whatsapp"
            else current.twilio_sms_from
        )
        sid = new_sid()
        form = {
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "MessageSid": sid,
            "AccountSid": current.twilio_sid,
            "From": address,
            "To": hotline_number,
            "Body": message.body,
            "SmsStatus": "received",
            "NumMedia": "1" if message.media else "0",
            "NumSegments": str(sms.segment_count(message.body)),
            "ApiVersion": "2010-04-01",
        }
        if message.channel == "whatsapp":
            form |= {
                "ProfileName": "Sandbox",
                "WaId": address.removeprefix("whatsapp:+"),
                "MessageType": "image" if message.media else "text",
            }
        if message.media:
            form |= {
                "MediaUrl0": f"{current.sandbox_url.rstrip('/')}/media/photo.gif",
                "MediaContentType0": "image/gif",
            }
        now = _now_rfc2822()
        await box.store(
            {
                "sid": sid,
                "to": hotline_number,
                "from": address,
                "body": message.body,
                "status": "received",
                "direction": "inbound",
                "date_created": now,
                "date_updated": now,
                "at": time.time(),
                "num_segments": form["NumSegments"],
                "num_media": form["NumMedia"],
            }
        )
        url = current.public_url.rstrip("/") + "/twilio/messages"
        try:
            reply = await box.post_signed(url, form)
        except httpx.HTTPError as error:
            return JSONResponse(
                {"sid": sid, "webhook_status": None, "error": type(error).__name__}, status_code=502
            )
        return JSONResponse({"sid": sid, "webhook_status": reply.status_code})

    @app.post("/phone/thread")
    async def phone_thread(thread: Thread, request: Request) -> JSONResponse:
        box = sandbox(request)
        address = _address(thread.channel, thread.number)
        shown = []
        for sid in await box.db.lrange(thread_key(address), 0, -1):
            message = await box.load(sid)
            if message:
                shown.append(
                    {
                        "sid": sid,
                        "direction": "in" if message["direction"] == "inbound" else "out",
                        "body": message["body"],
                        "status": message["status"],
                        "at": message.get("at"),
                        "media": message.get("num_media", "0") != "0",
                    }
                )
        return JSONResponse({"messages": shown})

    @app.get("/media/photo.gif")
    async def photo() -> Response:
        pixel = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
        return Response(pixel, media_type="image/gif")

    # ------------------------------------------------------------- test controls

    @app.post("/sandbox/optout")
    async def opt_out(change: NumberFlag, request: Request) -> JSONResponse:
        """Mark a number as opted out at Twilio (sends then fail with 21610), or undo it."""
        box = sandbox(request)
        if change.on:
            await box.db.sadd(OPTED_OUT, change.number)
        else:
            await box.db.srem(OPTED_OUT, change.number)
        return JSONResponse({"ok": True})

    @app.post("/sandbox/unreachable")
    async def unreachable(change: NumberFlag, request: Request) -> JSONResponse:
        """Make messages to a number end undelivered (a phone that is off), or undo it."""
        box = sandbox(request)
        if change.on:
            await box.db.sadd(UNREACHABLE, change.number)
        else:
            await box.db.srem(UNREACHABLE, change.number)
        return JSONResponse({"ok": True})

    @app.post("/sandbox/faults")
    async def faults(change: Faults, request: Request) -> JSONResponse:
        """Make the next `count` creates fail with `status` (429 or 5xx)."""
        box = sandbox(request)
        await box.db.hset(FAULTS, mapping={"status": change.status, "remaining": change.count})
        return JSONResponse({"ok": True})

    @app.post("/sandbox/slow")
    async def slow(change: Slow, request: Request) -> JSONResponse:
        """After `skip` creates, take the next `count` at once but answer each only after
        `seconds`."""
        box = sandbox(request)
        await box.db.hset(
            FAULTS,
            mapping={
                "slow": change.seconds,
                "slow_remaining": change.count,
                "slow_skip": change.skip,
            },
        )
        return JSONResponse({"ok": True})

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        try:
            ok = bool(await sandbox(request).db.ping())
        except redis.RedisError:
            ok = False
        return JSONResponse(
            {"status": "ok" if ok else "degraded", "redis": ok}, status_code=200 if ok else 503
        )

    return app


app = create_app()
