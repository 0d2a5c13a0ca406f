"""The authorization matrix: a member of site A (as viewer, operator and admin) and an anonymous
visitor replay every URL the project serves against site B (pages, JSON, actions, API endpoints and
their format-suffix twins, files, exports, the admin, the WebSocket), and get 403/404 (anonymous:
the login page, or 401) with none of B's names or ids in the body; B's rows stay as they were.

The matrix is complete by construction: test_every_url_pattern_is_in_the_matrix walks the URL
resolver and the WebSocket routes and fails for any pattern no case requests, so a new endpoint
must come with its row here. Requests whose body names B's objects from A's side (create a rule on
B's zone, assign A's incident to B's admin) must answer exactly as they do for an id that does not
exist, so they confirm nothing about B.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from dashboard.routing import websocket_urlpatterns
from monitor.live import incident_event, publish_now, site_group
from monitor.media import snapshot_path
from monitor.models import (
    AlertRule,
    AuditLog,
    Camera,
    ClipStatus,
    Delivery,
    Event,
    Incident,
    Membership,
    NotificationChannel,
    Role,
    Site,
    Zone,
)
from tests.conftest import WHOLE_FRAME

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ROLES = ("viewer", "operator", "admin", "anonymous")
MEMBER_ROLES = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "admin": Role.ADMIN}
BRAVO = re.compile("bravo", re.IGNORECASE)  # in every name, URL, note and file of site B
MEDIA = b"BRAVO-MEDIA"


@dataclass(frozen=True)
class Ids:
    """Site B's objects by id (distinctive numbers, so a leaked one is found in any body)."""

    site: int = 731001
    camera: int = 731002
    zone: int = 731003
    rule: int = 731004
    channel: int = 731005
    incident: int = 731006
    event: int = 731007
    delivery: int = 731008
    user: int = 731009

    def numbers(self) -> list[str]:
        return [str(v) for v in dataclasses.astuple(self)]


# The same request with ids that exist nowhere: what "no such object" looks like.
NOWHERE = Ids(*range(990001, 990010))


@dataclass
class World:
    a_site: Site
    a_camera: Camera
    a_zone: Zone
    a_rule: AlertRule
    a_channel: NotificationChannel
    a_incident: Incident
    people: dict[str, User | None]
    b: Ids = field(default_factory=Ids)


def _media(root: Path, name: str, content: bytes) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return name


def _site(
    root: Path, name: str, ids: Ids | None, label: str
) -> tuple[Site, Camera, Zone, AlertRule, NotificationChannel, Incident]:
    """A site with one of everything, its incident with a clip, a poster, a note and an event."""
    pk: dict[str, Any] = dataclasses.asdict(ids) if ids else {}
    site = Site.objects.create(pk=pk.get("site"), name=f"{name} depot")
    camera = Camera.objects.create(
        pk=pk.get("camera"), site=site, name=f"{name} cam", stream_url=f"rtsp://{label}:{label}-pw@10.9.9.9/s"
    )
    zone = Zone.objects.create(pk=pk.get("zone"), camera=camera, name=f"{name} zone", points=WHOLE_FRAME)
    rule = AlertRule.objects.create(pk=pk.get("rule"), site=site, zone=zone, name=f"{name} rule")
    channel = NotificationChannel.objects.create(
        pk=pk.get("channel"), site=site, name=f"{name} hook", kind="webhook", target=f"https://{label}.example/hook"
    )
    content = MEDIA if ids else b"ALPHA-MEDIA"
    incident = Incident.objects.create(
        pk=pk.get("incident"),
        site=site,
        camera=camera,
        rule=rule,
        title=f"{name} incident",
        started_at=AT,
        last_seen_at=AT + timedelta(seconds=4),
        notes=f"[2026-11-24 12:01 UTC] someone: {name} note",
        clip=_media(root, f"clips/{label}.mp4", content),
        poster=_media(root, f"posters/{label}.jpg", content),
        clip_status=ClipStatus.READY,
        clip_started_at=AT,
    )
    Event.objects.create(
        pk=pk.get("event"),
        camera=camera,
        rule=rule,
        incident=incident,
        track_id=f"{label}-7",
        segment_start=AT,
        segment_end=AT + timedelta(seconds=3),
        actor_class="person",
        action="present",
        score=0.9,
        boxes=[[0.0, 0.1, 0.1, 0.3, 0.6]],
    )
    Delivery.objects.create(pk=pk.get("delivery"), incident=incident, channel=channel)
    _media(root, str(snapshot_path(camera.pk).relative_to(root)), content)
    return site, camera, zone, rule, channel, incident


@pytest.fixture
def world(db: None, settings: Any, tmp_path: Path) -> World:
    return build_world(settings, tmp_path)


def build_world(settings: Any, tmp_path: Path) -> World:
    settings.MEDIA_ROOT = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    a = _site(tmp_path, "Alpha", None, "alpha")
    _site(tmp_path, "Bravo", Ids(), "bravo")
    b_admin = User.objects.create_user("bravo-admin", pk=Ids().user)
    Membership.objects.create(user=b_admin, site_id=Ids().site, role=Role.ADMIN)
    people: dict[str, User | None] = {"anonymous": None}
    for role, site_role in MEMBER_ROLES.items():
        people[role] = User.objects.create_user(f"alpha-{role}")
        Membership.objects.create(user=people[role], site=a[0], role=site_role)
    return World(*a, people=people)


def client_for(world: World, role: str) -> Client:
    client = Client()
    user = world.people[role]
    if user is not None:
        client.force_login(user)
    return client


def b_state(ids: Ids) -> list[Any]:
    """Everything of site B that a refused request must leave as it was."""
    incident = Incident.objects.filter(pk=ids.incident).values().get()
    incident.pop("last_seen_at")
    return [
        incident,
        list(Camera.objects.filter(site_id=ids.site).values()),
        list(Zone.objects.filter(camera__site_id=ids.site).values()),
        list(AlertRule.objects.filter(site_id=ids.site).values()),
        list(NotificationChannel.objects.filter(site_id=ids.site).values()),
        list(Event.objects.filter(camera__site_id=ids.site).values()),
        list(Delivery.objects.filter(incident__site_id=ids.site).values()),
        list(Site.objects.filter(pk=ids.site).values()),
        list(Membership.objects.filter(site_id=ids.site).values()),
        AuditLog.objects.filter(site_id=ids.site).count(),
    ]


def a_links(w: World) -> list[Any]:
    """What ties A's objects to A: a request that names B's objects must not re-tie them to B."""
    rule = AlertRule.objects.get(pk=w.a_rule.pk)
    return [
        Incident.objects.get(pk=w.a_incident.pk).assignee_id,
        rule.zone_id,
        sorted(rule.channels.values_list("pk", flat=True)),
        Zone.objects.get(pk=w.a_zone.pk).camera_id,
        Camera.objects.get(pk=w.a_camera.pk).site_id,
    ]


# --- The cases -------------------------------------------------------------------------------

Build = Callable[[World, Ids], Any]


@dataclass(frozen=True)
class Case:
    """One request. `expect` maps a member's role to the statuses allowed; anonymous visitors always
    get the login page (pages) or 401 (API), unless `public`."""

    name: str
    method: str
    path: Build
    data: Build | None = None
    as_json: bool = False
    expect: dict[str, set[int]] = field(default_factory=dict)
    public: set[int] = field(default_factory=set)  # statuses for everyone, anonymous included
    # A body that names B's objects from A's side: answered as for ids that exist nowhere.
    names_b_in_request: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def statuses(self, role: str) -> set[int]:
        if self.public:
            return self.public
        if role == "anonymous":
            return {401, 403} if self.is_api else {302}
        return self.expect.get(role, {403, 404})

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api ")


def own(status: int = 200) -> dict[str, set[int]]:
    """A's own page or list, which must hold nothing of B."""
    return dict.fromkeys(MEMBER_ROLES, {status})


def from_role(least: str, status: int) -> dict[str, set[int]]:
    """Refused (403/404) below `least`; `status` from it up."""
    ranks = list(MEMBER_ROLES)
    return {r: ({status} if ranks.index(r) >= ranks.index(least) else {403, 404}) for r in ranks}


def page(name: str, path: Build, **kw: Any) -> Case:
    return Case(f"page {name}", kw.pop("method", "get"), path, **kw)


def api(name: str, method: str, path: Build, data: Build | None = None, **kw: Any) -> Case:
    return Case(f"api {name}", method, path, data, as_json=True, **kw)


DASHBOARD = [
    Case("login page", "get", lambda w, b: "/login/", public={200}),
    Case("log out", "post", lambda w, b: "/logout/", public={302}),
    page("home", lambda w, b: "/", expect=own(302)),
    page("B's wall", lambda w, b: f"/sites/{b.site}/"),
    page("B's state", lambda w, b: f"/sites/{b.site}/state.json"),
    page("B's incident list", lambda w, b: f"/sites/{b.site}/incidents/"),
    page(
        "A's incident list filtered by B's camera, zone and rule",
        lambda w, b: f"/sites/{w.a_site.pk}/incidents/?camera={b.camera}&zone={b.zone}&rule={b.rule}",
        expect=own(),
        names_b_in_request=True,
    ),
    page("B's cameras", lambda w, b: f"/sites/{b.site}/cameras/"),
    page("B's settings", lambda w, b: f"/sites/{b.site}/settings/"),
    page(
        "B's settings saved",
        lambda w, b: f"/sites/{b.site}/settings/",
        method="post",
        data=lambda w, b: {"timezone": "UTC", "retention_days": 1, "media_budget_mb": 1},
    ),
    page("B's activity", lambda w, b: f"/sites/{b.site}/activity/"),
    page("B's activity data", lambda w, b: f"/sites/{b.site}/activity.json"),
    page(
        "A's activity data for B's camera",
        lambda w, b: f"/sites/{w.a_site.pk}/activity.json?camera={b.camera}",
        expect={r: {200, 400} for r in MEMBER_ROLES},
        names_b_in_request=True,
    ),
    page("B's snapshot", lambda w, b: f"/cameras/{b.camera}/snapshot.jpg"),
    page("B's zone editor", lambda w, b: f"/cameras/{b.camera}/zones/"),
    page(
        "B's rule preview",
        lambda w, b: f"/cameras/{b.camera}/zones/preview.json",
        method="post",
        data=lambda w, b: {"zone": {"kind": "polygon", "points": WHOLE_FRAME}, "rule": {}},
        as_json=True,
    ),
    page("B's incident", lambda w, b: f"/incidents/{b.incident}/"),
    page("B's poster", lambda w, b: f"/incidents/{b.incident}/poster.jpg"),
    page("B's clip", lambda w, b: f"/incidents/{b.incident}/clip.mp4"),
    page("B's clip, a range", lambda w, b: f"/incidents/{b.incident}/clip.mp4", headers={"Range": "bytes=0-3"}),
    page("B's overlay", lambda w, b: f"/incidents/{b.incident}/overlay.json"),
    page("B's export", lambda w, b: f"/incidents/{b.incident}/export.zip"),
    *[
        page(
            f"B's incident {verb}",
            lambda w, b, verb=verb: f"/incidents/{b.incident}/{verb}/",
            method="post",
            data=lambda w, b: {"note": "Alpha was here", "assignee": str(w.people["operator"].pk)},
        )
        for verb in ("acknowledge", "resolve", "false_alarm", "note", "assign", "no-such-verb")
    ],
    # Refused for its method before anything is looked up: the same for every id.
    page(
        "B's incident read through an action URL",
        lambda w, b: f"/incidents/{b.incident}/acknowledge/",
        expect=dict.fromkeys(MEMBER_ROLES, {405}),
    ),
    page(
        "A's incident assigned to B's admin",
        lambda w, b: f"/incidents/{w.a_incident.pk}/assign/",
        method="post",
        data=lambda w, b: {"assignee": str(b.user)},
        expect=from_role("operator", 302),
        names_b_in_request=True,
    ),
]

# (endpoint, B's object, fields of a full body)
CONFIG: list[tuple[str, Callable[[Ids], int], Build]] = [
    ("cameras", lambda b: b.camera, lambda w, b: {"site": b.site, "name": "New", "stream_url": "rtsp://10.0.0.1/x"}),
    ("zones", lambda b: b.zone, lambda w, b: {"camera": b.camera, "name": "New", "points": WHOLE_FRAME}),
    ("rules", lambda b: b.rule, lambda w, b: {"site": b.site, "zone": b.zone, "name": "New"}),
    ("channels", lambda b: b.channel, lambda w, b: {"site": b.site, "name": "New", "kind": "email", "target": "a@b.c"}),
]


def _config_cases() -> list[Case]:
    cases = []
    for endpoint, obj, body in CONFIG:

        def one(w: World, b: Ids, endpoint: str = endpoint, obj: Callable[[Ids], int] = obj) -> str:
            return f"/api/v1/{endpoint}/{obj(b)}/"

        cases += [
            api(
                f"{endpoint} list",
                "get",
                lambda w, b, e=endpoint: f"/api/v1/{e}/?site={b.site}",
                expect=own(),
                names_b_in_request=True,
            ),
            api(f"{endpoint} retrieve B's", "get", one),
            api(
                f"{endpoint} create on B",
                "post",
                lambda w, b, e=endpoint: f"/api/v1/{e}/",
                body,
                expect=from_role("admin", 400),
                names_b_in_request=True,
            ),
            api(f"{endpoint} update B's", "put", one, body),
            api(f"{endpoint} partial update B's", "patch", one, lambda w, b: {"name": "Alpha took it"}),
            api(f"{endpoint} delete B's", "delete", one),
        ]
    return cases


def _incident_action(verb: str, body: dict[str, Any]) -> Case:
    return api(
        f"incident {verb} B's", "post", lambda w, b: f"/api/v1/incidents/{b.incident}/{verb}/", lambda w, b: body
    )


API = [
    api("sites list", "get", lambda w, b: "/api/v1/sites/", expect=own()),
    api("sites retrieve B", "get", lambda w, b: f"/api/v1/sites/{b.site}/"),
    api("sites members of B", "get", lambda w, b: f"/api/v1/sites/{b.site}/members/"),
    *_config_cases(),
    api(
        "rules: A's rule onto B's zone and channel",
        "patch",
        lambda w, b: f"/api/v1/rules/{w.a_rule.pk}/",
        lambda w, b: {"zone": b.zone, "channels": [b.channel]},
        expect=from_role("admin", 400),
        names_b_in_request=True,
    ),
    api(
        "zones: A's zone onto B's camera",
        "patch",
        lambda w, b: f"/api/v1/zones/{w.a_zone.pk}/",
        lambda w, b: {"camera": b.camera},
        expect=from_role("admin", 400),
        names_b_in_request=True,
    ),
    api(
        "cameras: A's camera onto B",
        "patch",
        lambda w, b: f"/api/v1/cameras/{w.a_camera.pk}/",
        lambda w, b: {"site": b.site},
        expect=from_role("admin", 400),
        names_b_in_request=True,
    ),
    api(
        "incidents list",
        "get",
        lambda w, b: f"/api/v1/incidents/?site={b.site}&camera={b.camera}",
        expect=own(),
        names_b_in_request=True,
    ),
    api("incidents retrieve B's", "get", lambda w, b: f"/api/v1/incidents/{b.incident}/"),
    api("incidents history of B's", "get", lambda w, b: f"/api/v1/incidents/{b.incident}/history/"),
    _incident_action("acknowledge", {"note": "Alpha"}),
    _incident_action("resolve", {"note": "Alpha"}),
    _incident_action("false-alarm", {"note": "Alpha"}),
    _incident_action("assign", {"assignee": None}),
    _incident_action("notes", {"text": "Alpha was here"}),
    api(
        "incidents: A's assigned to B's admin",
        "post",
        lambda w, b: f"/api/v1/incidents/{w.a_incident.pk}/assign/",
        lambda w, b: {"assignee": b.user},
        expect=from_role("operator", 400),
        names_b_in_request=True,
    ),
    api(
        "events list",
        "get",
        lambda w, b: f"/api/v1/events/?incident={b.incident}",
        expect=own(),
        names_b_in_request=True,
    ),
    api("events retrieve B's", "get", lambda w, b: f"/api/v1/events/{b.event}/"),
    api(
        "false alarm feedback",
        "get",
        lambda w, b: f"/api/v1/feedback/false-alarms/?site={b.site}",
        expect=own(),
        names_b_in_request=True,
    ),
    api(
        "deliveries list",
        "get",
        lambda w, b: f"/api/v1/deliveries/?incident={b.incident}",
        expect=own(),
        names_b_in_request=True,
    ),
    api("deliveries retrieve B's", "get", lambda w, b: f"/api/v1/deliveries/{b.delivery}/"),
    Case("api schema", "get", lambda w, b: "/api/v1/schema/", public={200}),
    Case("api docs", "get", lambda w, b: "/api/docs/", public={200}),
]


CASES = DASHBOARD + API


# --- Replaying them ------------------------------------------------------------------------


def send(client: Client, case: Case, w: World, b: Ids) -> HttpResponse:
    data = case.data(w, b) if case.data else None
    kwargs: dict[str, Any] = {"headers": case.headers}
    if data is not None:
        kwargs |= {"data": json.dumps(data), "content_type": "application/json"} if case.as_json else {"data": data}
    return getattr(client, case.method)(case.path(w, b), **kwargs)


def body_of(response: HttpResponse) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode(errors="replace")


def leaks(text: str, b: Ids, *, ids_too: bool = True) -> list[str]:
    found = BRAVO.findall(text)[:3]
    if ids_too:
        found += [n for n in b.numbers() if n in text]
    return found


def _check_anonymous_redirect(case: Case, role: str, response: HttpResponse) -> None:
    if response.status_code == 302 and role == "anonymous" and not case.public:
        assert urlsplit(response["Location"]).path == "/login/", response["Location"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_one_outside_site_b_reaches_its_data(case: Case, role: str, world: World) -> None:
    before, links = b_state(world.b), a_links(world)
    response = send(client_for(world, role), case, world, world.b)
    text = body_of(response)

    assert response.status_code in case.statuses(role), (response.status_code, text[:300])
    _check_anonymous_redirect(case, role, response)
    assert not leaks(text, world.b, ids_too=not case.names_b_in_request), text[:500]
    assert not BRAVO.search(response.get("Location", "")), response["Location"]
    assert b_state(world.b) == before, "B's rows changed"
    assert a_links(world) == links, "one of A's objects now points at B"


@pytest.mark.parametrize("role", [r for r in ROLES if r != "anonymous"])
@pytest.mark.parametrize("case", [c for c in CASES if c.names_b_in_request], ids=lambda c: c.name)
def test_naming_bs_objects_answers_as_for_objects_that_do_not_exist(case: Case, role: str, world: World) -> None:
    client = client_for(world, role)
    real, fake = send(client, case, world, world.b), send(client, case, world, NOWHERE)

    def masked(response: HttpResponse, ids: Ids) -> tuple[int, str]:
        text = body_of(response)
        for n, number in enumerate(ids.numbers()):
            text = text.replace(number, f"<id {n}>")
        return response.status_code, re.sub(r"csrfmiddlewaretoken\" value=\"[^\"]+", "", text)

    assert masked(real, world.b) == masked(fake, NOWHERE)


def test_the_api_has_no_format_suffix_twins(world: World) -> None:
    """They answered 500 on every @action (acknowledge.json, history.json ...): DRF passed `format`
    to handlers that do not take it. JSON is the only format; the twins are gone."""
    client = client_for(world, "admin")
    assert client.get(f"/api/v1/incidents/{world.a_incident.pk}/history/").status_code == 200
    for path in ("history.json", "acknowledge.json"):
        assert (
            client.generic(
                "POST" if "ack" in path else "GET", f"/api/v1/incidents/{world.a_incident.pk}/{path}"
            ).status_code
            == 404
        )


# --- The admin: staff only, and no member of a site is staff --------------------------------


def _admin_path(route: str, b: Ids) -> str:
    """A concrete URL for an admin route, with B's object where the route takes one."""
    model = re.match(r"admin/(\w+)/(\w+)/", route)
    ids = {("monitor", name): getattr(b, name, b.site) for name in ("site", "camera", "zone", "incident", "event")}
    ids |= {("monitor", "alertrule"): b.rule, ("monitor", "notificationchannel"): b.channel}
    ids |= {("monitor", "delivery"): b.delivery, ("auth", "user"): b.user}
    object_id = ids.get((model.group(1), model.group(2)), b.site) if model else b.site
    content_type = ContentType.objects.get_for_model(Site).pk
    path = re.sub(r"<path:content_type_id>", str(content_type), route)
    path = re.sub(r"<(path:object_id|id)>", str(object_id), path)
    path = re.sub(r"\(\?P<app_label>[^)]*\)", "monitor", path)
    path = re.sub(r"\(\?P<url>[^)]*\)", "no-such-page/", path).strip("^$")
    assert "<" not in path, f"fill in {route}"
    return "/" + path


def admin_routes() -> list[str]:
    return sorted(r for r in all_routes() if r.startswith("admin/"))


@pytest.mark.parametrize("role", ROLES)
def test_the_admin_sends_every_non_staff_user_to_its_login(role: str, world: World) -> None:
    client = client_for(world, role)
    assert admin.site._registry, "the admin is installed"
    refused = []
    for route in admin_routes():
        path = _admin_path(route, world.b)
        response = client.get(path)
        text = body_of(response)
        if route in ("admin/login/", "admin/logout/"):
            ok = response.status_code in (200, 302, 405)
        else:
            ok = response.status_code == 302 and urlsplit(response["Location"]).path == "/admin/login/"
        if not ok or leaks(text, world.b):
            refused.append((path, response.status_code, text[:120]))
    assert refused == []


def test_no_site_member_is_staff(world: World) -> None:
    assert not User.objects.filter(is_staff=True).exists() and not User.objects.filter(is_superuser=True).exists()


# --- The WebSocket --------------------------------------------------------------------------

WS_CASES = {"ws/sites/<int:site_id>/": lambda w: f"/ws/sites/{w.b.site}/"}


def communicator(user: User | None, path: str) -> WebsocketCommunicator:
    from monitor.asgi import application

    comm = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")])
    if user is not None:
        comm.scope["user"] = user
    return comm


@pytest_asyncio.fixture
async def close_thread_connections():
    """Consumers query from a worker thread; close its connection so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(WS_CASES))
async def test_b_s_socket_refuses_everyone_else(
    route: str, role: str, settings: Any, tmp_path: Path, close_thread_connections: None
) -> None:
    world = await sync_to_async(build_world)(settings, tmp_path)
    comm = communicator(world.people[role], WS_CASES[route](world))
    connected, code = await comm.connect()
    await comm.disconnect()  # ends the consumer's channel-layer receive in this test's event loop
    assert not connected and code == 4403


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_socket_of_site_a_hears_nothing_of_b(settings: Any, tmp_path: Path, close_thread_connections: None):
    world = await sync_to_async(build_world)(settings, tmp_path)
    comm = communicator(world.people["viewer"], f"/ws/sites/{world.a_site.pk}/")
    assert (await comm.connect())[0]
    b_incident = await sync_to_async(Incident.objects.select_related("camera").get)(pk=world.b.incident)
    await sync_to_async(publish_now)(site_group(world.b.site), incident_event(b_incident))
    await sync_to_async(publish_now)(site_group(world.a_site.pk), incident_event(world.a_incident))
    first = await comm.receive_json_from(timeout=5)
    assert first["incident_id"] == world.a_incident.pk, "B's push never reaches A's socket; A's does"
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()
    await asyncio.sleep(0)


# --- Completeness ---------------------------------------------------------------------------


def all_routes() -> set[str]:
    """Every URL pattern's full route, joined as Django's ResolverMatch.route joins them."""

    def walk(patterns: list[Any], prefix: str) -> set[str]:
        routes: set[str] = set()
        for p in patterns:
            route = URLResolver._join_route(prefix, str(p.pattern))
            if isinstance(p, URLResolver):
                routes |= walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                routes.add(route)
        return routes

    return walk(get_resolver().url_patterns, "")


def test_every_url_pattern_is_in_the_matrix(world: World) -> None:
    covered = {resolve(urlsplit(c.path(world, world.b)).path).route for c in CASES}
    covered |= {resolve(_admin_path(r, world.b)).route for r in admin_routes()}
    missing = sorted(all_routes() - covered)
    assert missing == [], f"add these routes to the matrix (DASHBOARD or API cases): {missing}"


def test_every_websocket_route_is_in_the_matrix() -> None:
    assert {str(p.pattern) for p in websocket_urlpatterns} == set(WS_CASES)
