"""The engine's view of a rule (ZoneRuleSpec) built from the rows. Light on purpose: the worker and
the web process (the editor's preview) both build specs here, and the web process imports no video code."""

from __future__ import annotations

from collections.abc import Sequence

from detection.geometry import Homography, validate_calibration
from detection.rules import ZoneRuleSpec
from detection.schedule import parse_schedule
from monitor.models import AlertRule, Camera, Zone, ZoneKind


def _points(raw: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in raw]


def _calibration(zone: Zone) -> Homography | None:
    return validate_calibration(zone.calibration_points, zone.calibration_width_m, zone.calibration_length_m)


def spec_for(rule: AlertRule, camera: Camera, zone: Zone | None = None) -> ZoneRuleSpec:
    """A rule's zone (area or line), conditions, and the masks of zone and camera.

    `zone` stands in for rule.zone when the zone is a draft that is not saved (the editor's preview).
    """
    zone = zone if zone is not None else rule.zone
    is_line = zone.kind == ZoneKind.LINE
    return ZoneRuleSpec(
        rule_id=rule.pk or 0,
        polygon=() if is_line else _points(zone.points),
        line=_points(zone.points) if is_line else (),
        kind=rule.kind,
        actor_class=rule.actor_class,
        actions=frozenset(rule.actions),
        min_confidence=rule.min_confidence,
        min_duration_s=rule.min_duration_s,
        schedule=parse_schedule(rule.schedule),
        tz_name=camera.site.timezone,
        anchor=zone.anchor,
        grace_s=rule.grace_s,
        dwell_s=rule.dwell_s,
        min_speed=rule.min_speed,
        max_speed=rule.max_speed,
        speed_unit=rule.speed_unit,
        calibration=_calibration(zone),
        direction_deg=rule.direction_deg,
        direction_tolerance_deg=rule.direction_tolerance_deg,
        min_count=rule.min_count,
        crossing=rule.crossing,
        min_height=rule.min_box_height,
        max_height=rule.max_box_height,
        min_area=rule.min_box_area,
        max_area=rule.max_box_area,
        masks=[_points(m) for m in [*zone.masks, *camera.masks]],
    )
