"""Bad input gets a clear error and changes nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from detection.types import ACTIONS
from monitor.models import AlertRule, Camera, Site, Zone, ZoneKind


def _messages(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(str(m) for m in exc.value.messages)


def test_a_polygon_zone_with_two_points_is_refused(camera: Camera) -> None:
    zone = Zone(camera=camera, name="Too thin", kind=ZoneKind.POLYGON, points=[[0.1, 0.1], [0.5, 0.5]])
    with pytest.raises(ValidationError) as exc:
        zone.full_clean()
    assert "at least 3 points" in _messages(exc)
    assert not Zone.objects.exists()


def test_a_self_crossing_polygon_is_refused(camera: Camera) -> None:
    bow_tie = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
    zone = Zone(camera=camera, name="Bow tie", kind=ZoneKind.POLYGON, points=bow_tie)
    with pytest.raises(ValidationError) as exc:
        zone.full_clean()
    assert "cross" in _messages(exc)


def test_a_line_needs_two_distinct_points(camera: Camera) -> None:
    zone = Zone(camera=camera, name="Dot", kind=ZoneKind.LINE, points=[[0.3, 0.3], [0.3, 0.3]])
    with pytest.raises(ValidationError) as exc:
        zone.full_clean()
    assert "2 distinct points" in _messages(exc)


def test_a_valid_line_and_polygon_are_accepted(camera: Camera) -> None:
    Zone(camera=camera, name="Wire", kind=ZoneKind.LINE, points=[[0.1, 0.5], [0.9, 0.5]]).full_clean()
    Zone(camera=camera, name="Lot", kind=ZoneKind.POLYGON, points=[[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]).full_clean()


def test_a_rule_on_a_zone_of_another_site_is_refused(zone: Zone, other_site: Site) -> None:
    rule = AlertRule(site=other_site, zone=zone, name="Sneaky")
    with pytest.raises(ValidationError) as exc:
        rule.full_clean()
    assert "another site" in _messages(exc)
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize("url", ["ftp://cam.example/stream", "javascript:alert(1)", "smb://nas/video.mp4", "  "])
def test_a_camera_url_with_an_unsupported_scheme_is_refused(site: Site, url: str) -> None:
    camera = Camera(site=site, name="Bad", stream_url=url)
    with pytest.raises(ValidationError) as exc:
        camera.full_clean()
    assert "stream_url" in exc.value.message_dict
    assert not Camera.objects.filter(name="Bad").exists()


@pytest.mark.parametrize(
    "url", ["rtsp://10.0.0.5:554/stream1", "https://cams.example/live.m3u8", "/srv/video/gate.mp4", "file:///v.mp4"]
)
def test_supported_camera_urls_are_accepted(site: Site, url: str) -> None:
    Camera(site=site, name="Good", stream_url=url).full_clean()


def test_unknown_actions_and_bad_schedules_are_refused(site: Site, zone: Zone) -> None:
    rule = AlertRule(site=site, zone=zone, name="R", actions=["teleporting"], schedule=[{"days": [9]}])
    with pytest.raises(ValidationError) as exc:
        rule.full_clean()
    assert set(exc.value.message_dict) == {"actions", "schedule"}


def test_rules_may_ask_for_every_action_the_localizer_scores(site: Site, zone: Zone) -> None:
    AlertRule(site=site, zone=zone, name="R", actions=["present", *ACTIONS]).full_clean()


def test_a_site_needs_a_real_time_zone(db: None) -> None:
    with pytest.raises(ValidationError):
        Site(name="Nowhere", timezone="Mars/Olympus").full_clean()
