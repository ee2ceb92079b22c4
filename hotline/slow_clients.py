"""A request body must arrive within a deadline, or the request is answered 408 and dropped.

Uvicorn times out an idle keep-alive connection but not a body that trickles in: a client
that sends its headers and then a byte a minute holds a connection, and a worker's memory,
for as long as it likes (300 stalled connections were still held after 62 s). In production
HAProxy's `timeout http-request` ends them first; `make run` has no proxy in front, so the
gateway and the console carry this themselves.

Only the body is timed: once it is in, the app may wait on the client as long as it needs
(the console's live events wait for a disconnect, by design).
"""

from __future__ import annotations

import time

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Twilio's webhooks are a few kilobytes and the console's forms smaller: ten seconds is
# generous on the slowest mobile link, and the same as HAProxy's timeout http-request.
BODY_SECONDS = 10.0


class BodyTimeout:
    """ASGI middleware: the whole body within `seconds` of the request's start, or 408."""

    def __init__(self, app: ASGIApp, seconds: float | None = None) -> None:
        self.app = app
        self.seconds = BODY_SECONDS if seconds is None else seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds
        body_done = False
        started = cut = False

        async def timed_receive() -> Message:
            nonlocal body_done, cut
            if body_done:
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                # Answered here, whatever the app makes of the error (FastAPI turns a failed
                # body read into a 400 of its own): the client hears 408, the app nothing more.
                if not started:
                    cut = True
                    await send(_TOO_SLOW_START)
                    await send(_TOO_SLOW_BODY)
                raise
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if cut:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except TimeoutError:
            if not cut:
                raise


# Not an error of ours, nor anything to keep: the client was too slow.
_TOO_SLOW_START: Message = {
    "type": "http.response.start",
    "status": 408,
    "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")],
}
_TOO_SLOW_BODY: Message = {"type": "http.response.body", "body": b"request body too slow"}
