"""The zone editor page and the preview of a draft rule over the camera's recent tubes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from monitor.models import Camera, Event

LEFT_HALF = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def walk(x_from: float, x_to: float, seconds: int) -> list[list[float]]:
    """A person box walking from x_from to x_to, one sample a second."""
    step = (x_to - x_from) / seconds
    return [[float(t), x_from + t * step - 0.05, 0.4, x_from + t * step + 0.05, 0.8] for t in range(seconds + 1)]


def tube(camera: Camera, track: str, boxes: list[list[float]], ago_s: float = 600, score: float = 0.9) -> Event:
    start = timezone.now() - timedelta(seconds=ago_s)
    end = start + timedelta(seconds=boxes[-1][0])
    return Event.objects.create(
        camera=camera,
        track_id=track,
        segment_start=start,
        segment_end=end,
        actor_class="person",
        action="present",
        score=score,
        boxes=boxes,
    )


def preview(client: Client, camera: Camera, zone: dict[str, Any], rule: dict[str, Any]) -> Any:
    url = reverse("dashboard:rule-preview", args=[camera.pk])
    return client.post(url, json.dumps({"zone": zone, "rule": rule}), content_type="application/json")


@pytest.fixture
def tubes(camera: Camera) -> dict[str, Event]:
    return {
        "lingers_left": tube(camera, "1", [[float(t), 0.1, 0.4, 0.2, 0.8] for t in range(11)]),
        "passes_left": tube(camera, "2", walk(0.1, 0.45, 2), ago_s=300),
        "stays_right": tube(camera, "3", [[float(t), 0.7, 0.4, 0.8, 0.8] for t in range(11)], ago_s=200),
        "walks_across": tube(camera, "4", walk(0.2, 0.8, 6), ago_s=100),
    }


def test_the_editor_page_shows_the_drawing_tools_to_site_admins_only(
    owner: User, viewer: User, operator: User, camera: Camera
) -> None:
    url = reverse("dashboard:zone-editor", args=[camera.pk])
    admin_page = logged_in(owner).get(url)
    assert admin_page.status_code == 200 and b'data-can-edit="true"' in admin_page.content
    assert b"Draw area" in admin_page.content
    for member in (viewer, operator):
        page = logged_in(member).get(url)
        assert page.status_code == 200 and b'data-can-edit="false"' in page.content
        assert b"Draw area" not in page.content and b"Read-only" in page.content


def test_outsiders_and_anonymous_users_get_neither_editor_nor_preview(
    client: Client, outsider: User, camera: Camera
) -> None:
    page = reverse("dashboard:zone-editor", args=[camera.pk])
    assert logged_in(outsider).get(page).status_code == 404
    assert preview(logged_in(outsider), camera, {"points": LEFT_HALF}, {}).status_code == 404
    assert client.get(page).status_code == 302


def test_the_wall_links_each_camera_to_its_editor(operator: User, camera: Camera) -> None:
    wall = logged_in(operator).get(reverse("dashboard:site", args=[camera.site_id]))
    assert reverse("dashboard:zone-editor", args=[camera.pk]).encode() in wall.content


def test_a_presence_preview_lists_the_tubes_that_stayed_in_the_draft_area(
    viewer: User, camera: Camera, tubes: dict[str, Event]
) -> None:
    response = preview(logged_in(viewer), camera, {"kind": "polygon", "points": LEFT_HALF}, {"min_duration_s": 3})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["events_checked"] == 4
    assert [h["track_id"] for h in body["hits"]] == ["1", "4"]  # "2" left it after 2 s, "3" never came in
    assert body["hits"][0]["event_id"] == tubes["lingers_left"].pk
    names = {c["name"] for c in body["hits"][0]["conditions"]}
    assert "duration_s" in names and "duration_s" in body["hits"][0]["summary"]


def test_a_crossing_preview_fires_on_the_tube_that_crossed_the_draft_line(
    operator: User, camera: Camera, tubes: dict[str, Event]
) -> None:
    line = {"kind": "line", "points": [[0.5, 0.0], [0.5, 1.0]]}
    rule = {"kind": "crossing", "crossing": "any"}
    hits = preview(logged_in(operator), camera, line, rule).json()["hits"]
    assert [h["track_id"] for h in hits] == ["4"]
    assert any(c["name"] == "crossing" for c in hits[0]["conditions"])


def test_old_tubes_and_other_cameras_are_not_replayed(owner: User, camera: Camera) -> None:
    tube(camera, "old", [[float(t), 0.1, 0.4, 0.2, 0.8] for t in range(11)], ago_s=3 * 86400)
    other = Camera.objects.create(site=camera.site, name="Other cam", stream_url=camera.stream_url)
    tube(other, "elsewhere", [[float(t), 0.1, 0.4, 0.2, 0.8] for t in range(11)])
    body = preview(logged_in(owner), camera, {"kind": "polygon", "points": LEFT_HALF}, {}).json()
    assert body == {"events_checked": 0, "hits": []}


def test_an_invalid_draft_answers_400_with_the_models_messages_per_field(owner: User, camera: Camera) -> None:
    client = logged_in(owner)
    bowtie = {"kind": "polygon", "points": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]}
    errors = preview(client, camera, bowtie, {}).json()["errors"]
    assert "zone.points" in errors and "cross" in errors["zone.points"][0]
    errors = preview(client, camera, {"kind": "polygon", "points": LEFT_HALF}, {"min_confidence": 2}).json()["errors"]
    assert list(errors) == ["min_confidence"]
    errors = preview(client, camera, {"kind": "polygon", "points": LEFT_HALF}, {"kind": "crossing"}).json()["errors"]
    assert "kind" in errors
    bad = client.post(reverse("dashboard:rule-preview", args=[camera.pk]), "[1]", content_type="application/json")
    assert bad.status_code == 400
