"""Every route of the console refuses an anonymous request, and every supervisor route a counsellor.

The routes come from the app itself, so a route added tomorrow is checked tomorrow.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from referral.console.main import create_app

# Open on purpose: signing in, and the health check the launcher polls (it says only
# whether Redis answers). /static serves the stylesheet and script, which hold no data.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz"), ("HEAD", "/healthz")}
SAMPLE_VALUES = {"case_id": "R1", "name": "bob"}


def _routes() -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(create_app().routes):
        if isinstance(route.original_route, Mount):
            continue
        for method in sorted(route.methods or ()):
            found.append((method, route.path))
    return found


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE_VALUES.get(m.group(1), "x"), path)


def _is_supervisor_route(path: str) -> bool:
    return path.startswith(("/supervisor", "/api/supervisor"))


ROUTES = _routes()
SUPERVISOR_ROUTES = [(m, p) for m, p in ROUTES if _is_supervisor_route(p)]


def test_the_enumeration_sees_the_routes() -> None:
    paths = {path for _, path in ROUTES}
    assert {"/", "/cases/{case_id}", "/events", "/api/cases/{case_id}/close", "/api/docs"} <= paths


@pytest.mark.parametrize(
    ("method", "path"), [r for r in ROUTES if r not in PUBLIC], ids=lambda value: str(value)
)
def test_an_anonymous_request_is_refused(anonymous, open_case, method: str, path: str) -> None:
    open_case()  # R1 exists, so a refusal is about the login, not a missing case
    response = anonymous.request(method, _url(path), follow_redirects=False)

    if path.startswith("/api/"):
        assert response.status_code == 401, (method, path, response.status_code)
    else:
        assert response.status_code == 303, (method, path, response.status_code)
        assert response.headers["location"] == "/login"


@pytest.mark.parametrize(("method", "path"), SUPERVISOR_ROUTES, ids=lambda value: str(value))
def test_a_counsellor_is_refused_every_supervisor_route(
    sign_in, open_case, method: str, path: str
) -> None:
    open_case()
    ana = sign_in("ana")
    sign_in("bob")  # the account the routes that name one act on

    # With a valid CSRF token, so the refusal can only be about the role.
    response = ana.client.request(
        method, _url(path), headers={"x-csrf-token": ana.csrf}, follow_redirects=False
    )

    assert response.status_code == 403, (method, path, response.status_code)
