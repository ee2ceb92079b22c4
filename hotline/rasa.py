"""A small client for the Rasa server's HTTP API: the REST channel, parse, and events.

Rasa is reached like a database, over HTTP; no project code imports rasa.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from hotline.settings import Settings

# Rasa reads a message whose text, stripped of whitespace (str.strip), starts with "/" as a
# command: "/restart" resets the tracker and with it the risk window, "/child_alone@1" or
# '/intent{"slot": 1}' forces an intent and entities at any confidence (rasa.shared.core.
# training_data.story_reader.yaml_story_reader.unpack_regex_message). Nothing a person sends
# may do that. Look-alike slashes are taken too: Rasa only reads U+002F, but a normalisation
# anywhere on the way (NFKC folds U+FF0F to "/") would turn them into one.
_SLASHES = "/\uff0f\u2044\u2215\u29f8"
_COMMAND_START = re.compile(rf"\s*[{_SLASHES}][\s{_SLASHES}]*")
_FULL_WIDTH_SOLIDUS = "\uff0f"
# The metadata field that carries the inbound message's id (Twilio's MessageSid) to Rasa.
MESSAGE_ID = "message_sid"


def ordinary_text(text: str) -> str:
    """A person's text as Rasa must read it: words for the NLU, never a command.

    The leading slashes (and the whitespace around them) are dropped, so "/restart" reaches
    the NLU as the word "restart", which is what its tokenizer would have kept of it anyway.
    A text of nothing but slashes names no intent; it keeps them, as full-width slashes.
    """
    start = _COMMAND_START.match(text)
    if start is None:
        return text
    rest = text[start.end() :]
    return rest if rest else re.sub(f"[{_SLASHES}]", _FULL_WIDTH_SOLIDUS, text.strip())


class RasaUnavailable(Exception):
    """Rasa did not answer (down, restarting or overloaded); the caller retries later."""


class RasaTimeout(RasaUnavailable):
    """Rasa took the request and gave no answer in time: unlike a Rasa that is down, it may
    have handled the message (the tracker says), and a message that keeps doing this is the
    problem, not Rasa. A RasaUnavailable still, for callers that only need "no answer now"."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        super().__init__(
            f"no answer within {seconds:g} s" if seconds is not None else "no answer in time"
        )


class RasaClient:
    """Async client; one per process, sharing a connection pool."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self._base = settings.rasa_url.rstrip("/")
        self._token = settings.rasa_token.get_secret_value()
        self._http = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=3.0))
        self._read_timeout = self._http.timeout.read

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        params = kwargs.pop("params", {}) or {}
        if self._token:
            params["token"] = self._token
        try:
            response = await self._http.request(method, self._base + path, params=params, **kwargs)
        except httpx.ReadTimeout as error:
            # The request was sent: Rasa is working on it, or hung on it.
            raise RasaTimeout(self._read_timeout) from error
        except httpx.HTTPError as error:
            raise RasaUnavailable(type(error).__name__) from error
        if response.status_code >= 500 or response.status_code == 409:
            # 409: the conversation is locked by another message; try again shortly.
            raise RasaUnavailable(f"HTTP {response.status_code}")
        response.raise_for_status()
        return response.json() if response.content else None

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One user message through the REST channel; returns the bot's messages."""
        body = {"sender": sender, "message": ordinary_text(text), "metadata": metadata}
        return await self._call("POST", "/webhooks/rest/webhook", json=body) or []

    async def parse(self, text: str) -> dict[str, Any]:
        """NLU only: intent ranking for a text, without touching any tracker."""
        return await self._call("POST", "/model/parse", json={"text": ordinary_text(text)})

    async def tracker(self, sender: str) -> dict[str, Any]:
        return await self._call("GET", f"/conversations/{sender}/tracker")

    async def answered(self, sender: str, message_id: str) -> list[str] | None:
        """What the bot said to the user message sent with `metadata.message_id`, read from
        the tracker; None when the tracker holds no such message (it never reached Rasa, or
        Rasa dropped it unfinished: Rasa 3.6 saves a turn's events together, at its end).

        Rasa keeps a REST message's metadata on its user event, so the id sent with a message
        finds it again after the caller lost the answer (a crash, a timeout).
        """
        events = (await self.tracker(sender) or {}).get("events") or []
        for index in range(len(events) - 1, -1, -1):
            event = events[index]
            if (
                event.get("event") == "user"
                and (event.get("metadata") or {}).get(MESSAGE_ID) == message_id
            ):
                texts: list[str] = []
                for later in events[index + 1 :]:
                    if later.get("event") == "user":
                        break
                    if later.get("event") == "bot" and later.get("text"):
                        texts.append(later["text"])
                return texts
        return None

    async def append_events(self, sender: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._call("POST", f"/conversations/{sender}/tracker/events", json=events)

    async def execute(self, sender: str, action: str) -> list[dict[str, Any]]:
        """Run one action (e.g. a response) in the conversation; returns what the bot said."""
        result = await self._call("POST", f"/conversations/{sender}/execute", json={"name": action})
        return (result or {}).get("messages", [])

    async def healthy(self) -> bool:
        try:
            response = await self._http.get(self._base + "/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200
