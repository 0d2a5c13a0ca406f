"""The incident clip: served to site members only, in byte ranges so a <video> can seek; the
incident page shows the player when the clip is ready and says why when it is not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from dashboard.ranges import RangeNotSatisfiable, parse_range
from monitor.models import AlertRule, Camera, ClipStatus, Incident

CLIP = bytes(range(256)) * 40  # 10240 bytes whose values say where they are


@pytest.fixture
def incident(camera: Camera, rule: AlertRule, settings, tmp_path: Path) -> Incident:
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "incident.mp4").write_bytes(CLIP)
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    return Incident.objects.create(
        site=camera.site,
        camera=camera,
        rule=rule,
        title="Person at the gate",
        started_at=at,
        last_seen_at=at,
        clip="clips/incident.mp4",
        clip_status=ClipStatus.READY,
        clip_started_at=at,
    )


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def clip_url(incident: Incident) -> str:
    return reverse("dashboard:incident-clip", args=[incident.pk])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-1", (0, 1)),
        ("bytes=100-199", (100, 199)),
        ("bytes=1000-", (1000, 1023)),
        ("bytes=-24", (1000, 1023)),
        ("bytes=-5000", (0, 1023)),
        ("bytes=1000-99999", (1000, 1023)),
        ("", None),
        ("bytes=0-1,5-6", None),  # several ranges: we may (and do) send the whole file
        ("items=0-1", None),
        ("bytes=9-3", None),  # invalid: ignored, as the RFC says
    ],
)
def test_a_range_header_is_parsed_into_an_inclusive_span(header, span):
    assert parse_range(header, 1024) == span


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_is_not_satisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1024)


def test_a_member_gets_the_whole_clip_and_is_told_ranges_are_accepted(viewer: User, incident: Incident) -> None:
    response = logged_in(viewer).get(clip_url(incident))
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4" and response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(CLIP)) and body(response) == CLIP


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-1", 0, 1),
        ("bytes=4000-5999", 4000, 5999),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-100", 10140, 10239),
    ],
)
def test_a_range_request_gets_206_with_exactly_those_bytes(
    viewer: User, incident: Incident, header: str, first: int, last: int
) -> None:
    response = logged_in(viewer).get(clip_url(incident), HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(CLIP)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert body(response) == CLIP[first : last + 1]


def test_an_unsatisfiable_range_gets_416_with_the_size(viewer: User, incident: Incident) -> None:
    response = logged_in(viewer).get(clip_url(incident), HTTP_RANGE="bytes=20000-")
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{len(CLIP)}"


def test_an_outsider_gets_404_for_the_clip(outsider: User, incident: Incident) -> None:
    response = logged_in(outsider).get(clip_url(incident), HTTP_RANGE="bytes=0-1")
    assert response.status_code == 404


def test_the_clip_needs_a_login(client: Client, incident: Incident) -> None:
    response = client.get(clip_url(incident))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("status", [ClipStatus.RECORDING, ClipStatus.FAILED, ClipStatus.MISSING])
def test_a_clip_that_is_not_ready_is_not_served(viewer: User, incident: Incident, status: str) -> None:
    Incident.objects.filter(pk=incident.pk).update(clip_status=status)
    assert logged_in(viewer).get(clip_url(incident)).status_code == 404


def test_a_clip_gone_from_disk_is_404_not_500(viewer: User, incident: Incident, tmp_path: Path) -> None:
    (tmp_path / "clips" / "incident.mp4").unlink()
    assert logged_in(viewer).get(clip_url(incident)).status_code == 404


def test_the_incident_page_plays_a_ready_clip(viewer: User, incident: Incident) -> None:
    page = logged_in(viewer).get(incident.get_absolute_url()).content.decode()
    assert f'<video id="clip-video" class="poster" controls preload="metadata" src="{clip_url(incident)}"' in page
    assert 'data-clip-status="ready"' in page and "incident.js" not in page


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (ClipStatus.RECORDING, "", "Recording the clip (5 s before to 5 s after the alert)"),
        (ClipStatus.MISSING, "no video of the clip&#x27;s time window was buffered", "No clip: no video of the clip"),
        (ClipStatus.FAILED, "could not write the clip: No space left on device", "could not be saved: could not write"),
        (ClipStatus.NONE, "", "No clip was recorded for this incident."),
    ],
)
def test_the_incident_page_says_why_there_is_no_clip_to_play(
    viewer: User, incident: Incident, status: str, error: str, says: str
) -> None:
    Incident.objects.filter(pk=incident.pk).update(clip_status=status, clip_error=error.replace("&#x27;", "'"))
    page = logged_in(viewer).get(incident.get_absolute_url()).content.decode()
    assert says in page and "<video" not in page
    assert ("incident.js" in page) == (status == ClipStatus.RECORDING), "only a recording clip is waited for"
