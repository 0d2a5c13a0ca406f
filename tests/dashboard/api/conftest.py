"""A site with one of everything the API shows, and the same on another site (whose admin is the
outsider), so every test can check that nothing crosses between sites."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from monitor.models import (
    AlertRule,
    Camera,
    Delivery,
    Event,
    Incident,
    NotificationChannel,
    Site,
    Zone,
    ZoneKind,
)
from tests.conftest import WHOLE_FRAME

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NORTH_SECRET = "whsec_" + base64.b64encode(b"north-signing-key-32-bytes-long!").decode()
SOUTH_SECRET = "whsec_" + base64.b64encode(b"south-signing-key-32-bytes-long!").decode()
# Strings that only the other site's rows contain: none may appear in a response to our members.
SECRET_MARKERS = ("South secret", "rtsp://depot", SOUTH_SECRET)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """The shared people are created with passwords; real hashing would dominate these tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Everything:
    site: Site
    camera: Camera
    zone: Zone
    rule: AlertRule
    channel: NotificationChannel
    incident: Incident
    event: Event
    delivery: Delivery


def make_everything(site: Site, label: str, stream_url: str, secret: str) -> Everything:
    camera = Camera.objects.create(site=site, name=f"{label} cam", stream_url=stream_url)
    zone = Zone.objects.create(camera=camera, name=f"{label} zone", kind=ZoneKind.POLYGON, points=WHOLE_FRAME)
    rule = AlertRule.objects.create(site=site, zone=zone, name=f"{label} rule")
    channel = NotificationChannel.objects.create(
        site=site,
        name=f"{label} hook",
        kind="webhook",
        target="https://hooks.example.com/T0/secret-path",
        secret=secret,
    )
    rule.channels.add(channel)
    incident = Incident.objects.create(
        site=site, camera=camera, rule=rule, title=f"{label} incident", started_at=AT, last_seen_at=AT
    )
    event = Event.objects.create(
        camera=camera,
        rule=rule,
        incident=incident,
        track_id="7",
        segment_start=AT,
        segment_end=AT + timedelta(seconds=3),
        actor_class="person",
        action="present",
        score=0.9,
        boxes=[[0.0, 0.1, 0.1, 0.3, 0.6]],
    )
    delivery = Delivery.objects.create(incident=incident, channel=channel)
    return Everything(site, camera, zone, rule, channel, incident, event, delivery)


@pytest.fixture
def ours(site: Site) -> Everything:
    return make_everything(site, "North", "rtsp://cam:pw-north@10.0.0.5/stream", NORTH_SECRET)


@pytest.fixture
def theirs(other_site: Site) -> Everything:
    return make_everything(other_site, "South secret", "rtsp://depot:pw@10.9.9.9/s", SOUTH_SECRET)


def api_as(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client
