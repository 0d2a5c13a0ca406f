"""Rules in the domain: validation of zones and rules, the specs a worker builds from them, and
incidents from the engine's hits (explained, deduplicated), and the batched event writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from detection.rules import RuleKind, ZoneRuleEngine
from detection.tasks import rule_specs
from detection.tracker import Track
from monitor import services
from monitor.models import AlertRule, Camera, Event, Incident, Site, Zone, ZoneKind

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ROAD = [[0.4, 0.2], [0.6, 0.2], [0.9, 0.9], [0.1, 0.9]]


@pytest.fixture
def pushes():
    with mock.patch("monitor.live.publish_now") as publish:
        yield publish


@pytest.fixture
def line(camera: Camera) -> Zone:
    return Zone.objects.create(camera=camera, name="Gate line", kind=ZoneKind.LINE, points=[[0.2, 0.5], [0.8, 0.5]])


def errors_of(obj: Zone | AlertRule) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        obj.full_clean()
    return caught.value.message_dict


def test_a_calibration_needs_four_points_of_a_convex_quadrilateral_and_a_real_size(zone: Zone) -> None:
    zone.calibration_points, zone.calibration_width_m, zone.calibration_length_m = ROAD[:3], 20, 40
    assert "exactly 4 image points" in errors_of(zone)["calibration_points"][0]
    zone.calibration_points = [ROAD[0], ROAD[2], ROAD[1], ROAD[3]]  # a bow tie
    assert "convex quadrilateral" in errors_of(zone)["calibration_points"][0]
    zone.calibration_points, zone.calibration_length_m = ROAD, None
    assert "real width and length" in errors_of(zone)["calibration_points"][0]
    zone.calibration_length_m = 40
    zone.full_clean()


def test_a_mask_must_be_a_usable_polygon(zone: Zone) -> None:
    zone.masks = [[[0.1, 0.1], [0.2, 0.2]]]
    assert errors_of(zone)["masks"] == ["mask 1: a polygon needs at least 3 points, got 2"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": RuleKind.CROSSING}, "kind", "a crossing rule needs a directed-line zone"),
        ({"kind": RuleKind.SPEED}, "min_speed", "a speed rule needs a minimum or a maximum speed"),
        ({"kind": RuleKind.SPEED, "min_speed": 0.0}, "min_speed", "speed limits must be positive"),
        ({"kind": RuleKind.SPEED, "min_speed": 9.0, "max_speed": 5.0}, "max_speed", "below the minimum"),
        ({"kind": RuleKind.SPEED, "min_speed": 50.0, "speed_unit": "km/h"}, "speed_unit", "calibration"),
        ({"kind": RuleKind.WRONG_WAY}, "direction_deg", "needs the allowed direction"),
        ({"kind": RuleKind.LOITERING, "dwell_s": 0.0}, "dwell_s", "above 0 s"),
        ({"min_box_height": 0.5, "max_box_height": 0.2}, "max_box_height", "below the minimum"),
        ({"kind": RuleKind.CROWD, "min_count": 1}, "min_count", "greater than or equal to 2"),
    ],
)
def test_a_rule_that_could_never_fire_is_refused_with_the_reason(
    rule: AlertRule, fields: dict, field: str, message: str
) -> None:
    for name, value in fields.items():
        setattr(rule, name, value)
    assert message in " ".join(errors_of(rule)[field])


def test_a_line_zone_only_takes_crossing_rules(rule: AlertRule, line: Zone) -> None:
    rule.zone, rule.kind = line, RuleKind.CROWD
    assert "only supports crossing rules" in errors_of(rule)["kind"][0]
    rule.kind = RuleKind.CROSSING
    rule.full_clean()


def test_the_worker_builds_specs_for_area_and_line_zones_with_every_mask(
    camera: Camera, site: Site, zone: Zone, rule: AlertRule, line: Zone
) -> None:
    camera.masks = [[[0.0, 0.0], [0.1, 0.0], [0.1, 0.1]]]
    camera.save()
    zone.masks, zone.calibration_points, zone.calibration_width_m, zone.calibration_length_m = (
        [[[0.5, 0.5], [0.6, 0.5], [0.6, 0.6]]],
        ROAD,
        20.0,
        40.0,
    )
    zone.save()
    AlertRule.objects.filter(pk=rule.pk).update(kind=RuleKind.SPEED, min_speed=50.0, speed_unit="km/h")
    crossing = AlertRule.objects.create(site=site, zone=line, name="Enters", kind=RuleKind.CROSSING)
    specs = {s.rule_id: s for s in rule_specs(Camera.objects.select_related("site").get(pk=camera.pk))}
    assert specs[crossing.pk].line == [(0.2, 0.5), (0.8, 0.5)] and specs[crossing.pk].kind == RuleKind.CROSSING
    speed = specs[rule.pk]
    assert speed.calibration is not None and speed.calibration.apply((0.6, 0.2)) == pytest.approx((20.0, 0.0))
    assert len(speed.masks) == 2  # the zone's and the camera's
    assert speed.tz_name == "Europe/Paris"


def test_a_rule_saved_around_validation_is_skipped_not_fatal(camera: Camera, rule: AlertRule) -> None:
    AlertRule.objects.filter(pk=rule.pk).update(kind=RuleKind.WRONG_WAY)  # no direction: unusable
    assert rule_specs(Camera.objects.select_related("site").get(pk=camera.pk)) == []


def parked_car(at_s: float, track_id: int = 1) -> tuple[datetime, list[Track]]:
    at = T0 + timedelta(seconds=at_s)
    return at, [Track(track_id, "person", (400.0, 300.0, 440.0, 400.0), 0.9, T0, at)]


def test_an_actor_that_stays_far_past_the_cooldown_is_one_explained_incident(
    camera: Camera, rule: AlertRule, pushes: mock.Mock
) -> None:
    """Ten minutes with a 30 s cooldown, and the tracker losing it once (a new track id): one incident."""
    engine = ZoneRuleEngine(rule_specs(Camera.objects.select_related("site").get(pk=camera.pk)))
    for second in range(0, 600):
        if 300 <= second < 304:  # occluded longer than the grace: the tracker starts track 2
            continue
        at, tracks = parked_car(second, track_id=1 if second < 300 else 2)
        hits = engine.step(tracks, at, 1000, 500)
        if hits:
            services.record_rule_hits(camera.pk, hits)
    incident = Incident.objects.get()
    assert incident.track_ids == [1, 2]
    assert incident.last_seen_at == T0 + timedelta(seconds=599)
    assert Event.objects.count() == 2
    assert incident.explanation["kind"] == "presence"
    assert incident.explanation["conditions"][-1] == {
        "name": "duration_s",
        "value": 1.0,
        "required": ">= 1 s",
        "unit": "s",
    }
    assert (
        incident.explanation["summary"]
        == "actor_class person (needs person); confidence 0.9 >= 0.5; duration_s 1 s >= 1 s"
    )


def event_rows(camera: Camera, rule: AlertRule, n: int, score: float) -> list[Event]:
    return [
        Event(
            camera=camera,
            rule=rule,
            track_id=str(i),
            segment_start=T0 + timedelta(seconds=i),
            segment_end=T0 + timedelta(seconds=i + 3),
            actor_class="person",
            action="present",
            score=score,
            boxes=[[0.0, 0.1, 0.2, 0.3, 0.4]],
        )
        for i in range(n)
    ]


def test_the_batched_event_writer_is_idempotent_on_camera_track_and_segment_start(
    camera: Camera, rule: AlertRule
) -> None:
    assert services.write_events(event_rows(camera, rule, 25, 0.5), batch_size=10) == 25
    services.write_events(event_rows(camera, rule, 30, 0.7), batch_size=10)  # a re-run that saw a bit more
    assert Event.objects.count() == 30
    assert set(Event.objects.values_list("score", flat=True)) == {0.7}
