"""Pages and JSON: login required, site membership enforced, operators act, viewers only look."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from monitor.media import snapshot_path
from monitor.models import AlertRule, Camera, Incident, Site


@pytest.fixture
def incident(camera: Camera, rule: AlertRule) -> Incident:
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    return Incident.objects.create(
        site=camera.site, camera=camera, rule=rule, title="Person at the gate", started_at=at, last_seen_at=at
    )


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_login(client: Client, site: Site) -> None:
    response = client.get(reverse("dashboard:site", args=[site.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_login_page_logs_a_member_in(client: Client, operator: User, site: Site) -> None:
    response = client.post(reverse("login"), {"username": "operator", "password": "pw-for-tests-123"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("dashboard:site", args=[site.pk])


def test_a_member_sees_the_wall_with_cameras_and_active_incidents(
    viewer: User, site: Site, camera: Camera, incident: Incident
) -> None:
    page = logged_in(viewer).get(reverse("dashboard:site", args=[site.pk])).content.decode()
    assert camera.name in page and incident.title in page
    assert f'data-ws-path="/ws/sites/{site.pk}/"' in page


def test_an_outsider_gets_404_for_everything_of_another_site(
    outsider: User, site: Site, camera: Camera, incident: Incident, settings, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    snapshot_path(camera.pk).parent.mkdir(parents=True)
    snapshot_path(camera.pk).write_bytes(b"\xff\xd8secret")
    client = logged_in(outsider)
    urls = [
        reverse("dashboard:site", args=[site.pk]),
        reverse("dashboard:site-state", args=[site.pk]),
        reverse("dashboard:camera-snapshot", args=[camera.pk]),
        reverse("dashboard:incident", args=[incident.pk]),
        reverse("dashboard:incident-poster", args=[incident.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 404, url
        assert incident.title.encode() not in response.content
    response = client.post(reverse("dashboard:incident-action", args=[incident.pk, "resolve"]))
    assert response.status_code == 404
    incident.refresh_from_db()
    assert incident.status == "open"


def test_the_state_json_lists_camera_health_and_active_incidents(
    viewer: User, site: Site, camera: Camera, incident: Incident
) -> None:
    state = logged_in(viewer).get(reverse("dashboard:site-state", args=[site.pk])).json()
    assert state["cameras"][0]["camera_id"] == camera.pk
    assert [i["incident_id"] for i in state["incidents"]] == [incident.pk]


def test_an_operator_acknowledges_and_resolves_from_the_incident_page(operator: User, incident: Incident) -> None:
    client = logged_in(operator)
    page = client.get(reverse("dashboard:incident", args=[incident.pk])).content.decode()
    assert "Acknowledge" in page
    client.post(reverse("dashboard:incident-action", args=[incident.pk, "acknowledge"]), {"note": "seen"})
    client.post(reverse("dashboard:incident-action", args=[incident.pk, "resolve"]))
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.notes.endswith(" UTC] operator: seen")


def test_a_viewer_cannot_change_an_incident(viewer: User, incident: Incident) -> None:
    client = logged_in(viewer)
    assert "Acknowledge" not in client.get(reverse("dashboard:incident", args=[incident.pk])).content.decode()
    response = client.post(reverse("dashboard:incident-action", args=[incident.pk, "acknowledge"]))
    assert response.status_code == 404
    incident.refresh_from_db()
    assert incident.status == "open"


def test_an_invalid_transition_says_why(operator: User, incident: Incident) -> None:
    client = logged_in(operator)
    client.post(reverse("dashboard:incident-action", args=[incident.pk, "resolve"]))
    response = client.post(reverse("dashboard:incident-action", args=[incident.pk, "acknowledge"]), follow=True)
    assert "cannot acknowledge an incident that is Resolved" in response.content.decode()


def test_the_snapshot_is_served_to_members_without_caching(
    viewer: User, camera: Camera, settings, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    client = logged_in(viewer)
    assert client.get(reverse("dashboard:camera-snapshot", args=[camera.pk])).status_code == 404
    snapshot_path(camera.pk).parent.mkdir(parents=True)
    snapshot_path(camera.pk).write_bytes(b"\xff\xd8picture")
    response = client.get(reverse("dashboard:camera-snapshot", args=[camera.pk]))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert b"".join(response.streaming_content) == b"\xff\xd8picture"
