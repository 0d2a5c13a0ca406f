"""Through the admin, as a user would: bad input is refused with a clear message and saves nothing."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from monitor.models import AlertRule, Camera, Site, Zone


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-for-tests-123"))
    return client


def test_a_polygon_with_two_points_is_refused_in_the_admin(admin_client: Client, camera: Camera) -> None:
    form = {"camera": camera.pk, "name": "Thin", "kind": "polygon", "points": json.dumps([[0.1, 0.1], [0.4, 0.4]])}
    response = admin_client.post("/admin/monitor/zone/add/", form)
    assert response.status_code == 200
    assert "a polygon needs at least 3 points, got 2" in response.content.decode()
    assert not Zone.objects.exists()


def test_a_rule_on_a_zone_of_another_site_is_refused_in_the_admin(
    admin_client: Client, zone: Zone, other_site: Site
) -> None:
    form = {
        "site": other_site.pk,
        "zone": zone.pk,
        "name": "Cross-site",
        "enabled": "on",
        "actor_class": "person",
        "actions": "[]",
        "min_confidence": "0.5",
        "min_duration_s": "1",
        "cooldown_s": "60",
        "schedule": "[]",
        "severity": "medium",
    }
    response = admin_client.post("/admin/monitor/alertrule/add/", form)
    assert response.status_code == 200
    assert "the zone belongs to a camera of another site" in response.content.decode()
    assert not AlertRule.objects.exists()


def test_an_unsupported_camera_url_is_refused_and_an_unreachable_one_is_saved(admin_client: Client, site: Site) -> None:
    form = {"site": site.pk, "name": "Gate", "analysis_fps": "2", "enabled": "on", "stall_timeout_s": "10"}
    form |= {"offline_incident_after_s": "60", "pre_roll_s": "5", "post_roll_s": "5"}
    response = admin_client.post("/admin/monitor/camera/add/", {**form, "stream_url": "ftp://cam.local/live"})
    assert "unsupported URL scheme &#x27;ftp&#x27;" in response.content.decode()
    assert not Camera.objects.exists()

    response = admin_client.post("/admin/monitor/camera/add/", {**form, "stream_url": "rtsp://127.0.0.1:9/live"})
    assert response.status_code == 302
    camera = Camera.objects.get()
    assert camera.enabled and camera.health_state == "unknown"  # the worker reports offline when it tries
