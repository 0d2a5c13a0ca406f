"""The authorization matrix: every endpoint and action x owner / operator / viewer / outsider
(an admin of another site) / anonymous, with the expected status, and no other site's data in any
response body."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.conftest import WHOLE_FRAME
from tests.dashboard.api.conftest import NORTH_SECRET, SECRET_MARKERS, Everything, api_as

OURS_MARKERS = ("North incident", "North cam", "pw-north", NORTH_SECRET)
ROLES = ("owner", "operator", "viewer", "outsider", "anonymous")

Path = Callable[[Everything], str]
Body = Callable[[Everything], dict[str, Any]] | None


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Path
    body: Body
    expected: tuple[int, int, int, int, int]  # owner, operator, viewer, outsider, anonymous


def _read(name: str, path: Path) -> Case:
    return Case(name, "get", path, None, (200, 200, 200, 404, 401))


def _listing(name: str, path: Path) -> Case:
    # Outsiders get their own (empty of ours) list: lists never 404, they are filtered.
    return Case(name, "get", path, None, (200, 200, 200, 200, 401))


def _admin_write(name: str, method: str, path: Path, body: Body, ok: int) -> Case:
    # Creating names our site in the body: to an outsider it "does not exist" (400), like a bad id.
    outsider = 400 if method == "post" else 404
    return Case(name, method, path, body, (ok, 403, 403, outsider, 401))


def _operator_action(verb: str, body: dict[str, Any]) -> Case:
    return Case(
        f"incident {verb}",
        "post",
        lambda e: f"/api/v1/incidents/{e.incident.pk}/{verb}/",
        lambda e: body,
        (200, 200, 403, 404, 401),
    )


def camera_body(e: Everything) -> dict[str, Any]:
    return {"site": e.site.pk, "name": "New cam", "stream_url": "rtsp://10.0.0.9/live"}


def zone_body(e: Everything) -> dict[str, Any]:
    return {"camera": e.camera.pk, "name": "New zone", "kind": "polygon", "points": WHOLE_FRAME}


def rule_body(e: Everything) -> dict[str, Any]:
    return {"site": e.site.pk, "zone": e.zone.pk, "name": "New rule", "channels": [e.channel.pk]}


def channel_body(e: Everything) -> dict[str, Any]:
    return {"site": e.site.pk, "name": "New mail", "kind": "email", "target": "ops@example.com"}


CONFIG: list[tuple[str, str, Callable[[Everything], Any], Callable[[Everything], dict[str, Any]], int]] = [
    # (endpoint, field to patch, the object, a full body, what deleting it gives the owner)
    ("cameras", "name", lambda e: e.camera, camera_body, 409),  # it has incidents: disable instead
    ("zones", "name", lambda e: e.zone, zone_body, 204),
    ("rules", "name", lambda e: e.rule, rule_body, 204),
    ("channels", "name", lambda e: e.channel, channel_body, 204),
]


def _config_cases() -> list[Case]:
    cases = []
    for endpoint, field, obj, body, deleted in CONFIG:

        def one(e: Everything, obj: Callable[[Everything], Any] = obj, endpoint: str = endpoint) -> str:
            return f"/api/v1/{endpoint}/{obj(e).pk}/"

        cases += [
            _listing(f"{endpoint} list", lambda e, endpoint=endpoint: f"/api/v1/{endpoint}/"),
            _read(f"{endpoint} retrieve", one),
            _admin_write(f"{endpoint} create", "post", lambda e, endpoint=endpoint: f"/api/v1/{endpoint}/", body, 201),
            _admin_write(f"{endpoint} update", "put", one, lambda e, body=body: {**body(e), "name": "Renamed"}, 200),
            _admin_write(f"{endpoint} partial update", "patch", one, lambda e, f=field: {f: "Patched"}, 200),
            _admin_write(f"{endpoint} delete", "delete", one, None, deleted),
        ]
    return cases


CASES = [
    _listing("sites list", lambda e: "/api/v1/sites/"),
    _read("sites retrieve", lambda e: f"/api/v1/sites/{e.site.pk}/"),
    _read("sites members", lambda e: f"/api/v1/sites/{e.site.pk}/members/"),
    *_config_cases(),
    _listing("incidents list", lambda e: "/api/v1/incidents/"),
    _read("incidents retrieve", lambda e: f"/api/v1/incidents/{e.incident.pk}/"),
    _read("incidents history", lambda e: f"/api/v1/incidents/{e.incident.pk}/history/"),
    _operator_action("acknowledge", {"note": "on it"}),
    _operator_action("resolve", {}),
    _operator_action("false-alarm", {"note": "a shadow"}),
    _operator_action("assign", {"assignee": None}),
    _operator_action("notes", {"text": "called the guard"}),
    _listing("events list", lambda e: "/api/v1/events/"),
    _read("events retrieve", lambda e: f"/api/v1/events/{e.event.pk}/"),
    _listing("false alarm feedback", lambda e: "/api/v1/feedback/false-alarms/"),
    _listing("deliveries list", lambda e: "/api/v1/deliveries/"),
    _read("deliveries retrieve", lambda e: f"/api/v1/deliveries/{e.delivery.pk}/"),
]


@pytest.fixture
def people(owner: User, operator: User, viewer: User, outsider: User) -> dict[str, User | None]:
    return {"owner": owner, "operator": operator, "viewer": viewer, "outsider": outsider, "anonymous": None}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_endpoint_answers_each_role_as_the_pages_do(
    case: Case, role: str, people: dict[str, User | None], ours: Everything, theirs: Everything
) -> None:
    client = api_as(people[role])
    body = case.body(ours) if case.body else None
    response = getattr(client, case.method)(case.path(ours), data=body, format="json")
    expected = case.expected[ROLES.index(role)]
    assert response.status_code == expected, (response.status_code, response.content[:300])
    text = response.content.decode()
    leaked = OURS_MARKERS if role == "outsider" else (*SECRET_MARKERS, NORTH_SECRET)
    assert not [m for m in leaked if m in text], text[:500]


def test_an_outsiders_lists_hold_only_their_own_sites_rows(
    outsider: User, ours: Everything, theirs: Everything
) -> None:
    client = api_as(outsider)
    for endpoint in ("sites", "cameras", "zones", "rules", "channels", "incidents", "events", "deliveries"):
        rows = client.get(f"/api/v1/{endpoint}/").json()["results"]
        assert rows, endpoint
        assert {r.get("site", r["id"]) for r in rows} == {theirs.site.pk}, endpoint
    assert json.dumps(client.get(f"/api/v1/incidents/?site={ours.site.pk}").json()["results"]) == "[]"


def test_a_member_of_two_sites_acts_only_where_their_role_allows(
    operator: User, ours: Everything, theirs: Everything
) -> None:
    from monitor.models import Membership, Role

    Membership.objects.create(user=operator, site=theirs.site, role=Role.VIEWER)
    client = api_as(operator)
    assert len(client.get("/api/v1/incidents/").json()["results"]) == 2
    assert client.post(f"/api/v1/incidents/{ours.incident.pk}/acknowledge/", {}, format="json").status_code == 200
    refused = client.post(f"/api/v1/incidents/{theirs.incident.pk}/acknowledge/", {}, format="json")
    assert refused.status_code == 403
    theirs.incident.refresh_from_db()
    assert theirs.incident.status == "open"
