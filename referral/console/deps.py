"""Dependencies every console route uses: settings, Redis, the signed-in counsellor, CSRF.

Permissions are decided here and in permissions.py, in one place, not route by route.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated
from zoneinfo import ZoneInfo

import redis
from fastapi import Depends, Request, status

from hotline.rasa import RasaClient
from hotline.settings import Settings, get_settings
from hotline.store import connect
from referral import accounts, rota
from referral.accounts import Counsellor
from referral.console import permissions, sessions
from referral.console.casework import Casework
from referral.console.errors import Refused
from referral.queue import Referrals

_clients: dict[str, redis.Redis] = {}


def settings_dep() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]


def db_dep(settings: SettingsDep) -> redis.Redis:
    client = _clients.get(settings.redis_url)
    if client is None:
        client = _clients[settings.redis_url] = connect(settings)
    return client


DbDep = Annotated[redis.Redis, Depends(db_dep)]


def session_clock_dep() -> Callable[[], float]:
    """The time sessions are measured by; tests hand in their own, apart from the queue's."""
    return time.time


SessionClockDep = Annotated[Callable[[], float], Depends(session_clock_dep)]

# Requests an open console makes by itself: presence, the event stream and the fragments it
# refetches when a case changes. They must not keep an unattended console signed in.
BACKGROUND_ROUTES = frozenset(
    {"/heartbeat", "/api/heartbeat", "/events", "/queue/rows", "/cases/{case_id}/transcript"}
)
# The console's script marks its other automatic requests (the dashboard's refresh) with this.
BACKGROUND_HEADER = "x-hotline-background"


def is_own_action(request: Request) -> bool:
    """Whether the counsellor asked for this request, rather than a page left open."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return path not in BACKGROUND_ROUTES and BACKGROUND_HEADER not in request.headers


async def current_counsellor(request: Request, db: DbDep, clock: SessionClockDep) -> Counsellor:
    token = request.cookies.get(sessions.COOKIE)
    now = clock()
    session = sessions.load(db, token, now)
    counsellor = accounts.get(db, session["counsellor"]) if session else None
    if session is None or counsellor is None or not counsellor.active:
        # The API answers 401; a page sends the browser to /login (errors.py).
        raise Refused(status.HTTP_401_UNAUTHORIZED, "sign_in_first")
    # Known before the CSRF check, so even that refusal's page has the counsellor's header
    # and language (errors.py draws refusals outside any route).
    request.state.csrf = session["csrf"]
    request.state.db = db
    request.state.me = counsellor
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # Forms send the token as a field, the JSON API and HTMX as a header.
        offered = request.headers.get("x-csrf-token")
        if offered is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            field = (await request.form()).get("csrf_token")
            offered = field if isinstance(field, str) else None
        if not sessions.csrf_ok(session, offered):
            raise Refused(status.HTTP_403_FORBIDDEN, "csrf_refused")
    if is_own_action(request):
        sessions.touch(db, token, now)
    return counsellor


CounsellorDep = Annotated[Counsellor, Depends(current_counsellor)]


def supervisor(counsellor: CounsellorDep) -> Counsellor:
    if not permissions.is_supervisor(counsellor):
        raise Refused(status.HTTP_403_FORBIDDEN, "supervisors_only")
    return counsellor


SupervisorDep = Annotated[Counsellor, Depends(supervisor)]


def clock_dep() -> Callable[[], float]:
    """What time it is, for the queue and every figure; tests hand in a fixed clock."""
    return time.time


ClockDep = Annotated[Callable[[], float], Depends(clock_dep)]


def referrals_dep(db: DbDep, clock: ClockDep) -> Referrals:
    return Referrals(db, clock=clock)


ReferralsDep = Annotated[Referrals, Depends(referrals_dep)]


async def rasa_dep(settings: SettingsDep) -> AsyncIterator[RasaClient]:
    """A Rasa client for the request that closes a case (closing is rare; no pool to keep)."""
    client = RasaClient(settings)
    try:
        yield client
    finally:
        await client.aclose()


RasaDep = Annotated[RasaClient, Depends(rasa_dep)]


def rota_dep(settings: SettingsDep) -> rota.Rota:
    """The shifts in data/rota.yml; without the file, the default time zone and no shifts."""
    try:
        return rota.load_rota(settings.data_dir / "rota.yml")
    except FileNotFoundError:
        return rota.parse_rota({})


RotaDep = Annotated[rota.Rota, Depends(rota_dep)]


def zone_dep(hours: RotaDep) -> ZoneInfo:
    """The hotline's time zone: every time in the console is shown in it."""
    return hours.timezone


ZoneDep = Annotated[ZoneInfo, Depends(zone_dep)]


def casework_dep(referrals: ReferralsDep, me: CounsellorDep, clock: ClockDep) -> Casework:
    return Casework(referrals, me, clock)


CaseworkDep = Annotated[Casework, Depends(casework_dep)]
