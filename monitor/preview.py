"""What a draft rule would have done: replay a camera's recent tubes (Events) through the engine.

Pure reads, no side effects: the zone editor asks it before anything is saved. Each Event's boxes
become a track again at their own times; all tubes of the window run through one engine together,
so a crowd rule sees the actors that were there at the same moment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError

from detection.geometry import GeometryError
from detection.rules import RuleHit, ZoneRuleEngine, ZoneRuleSpec
from detection.tracker import Track
from monitor.models import AlertRule, Camera, Event, Zone
from monitor.rule_specs import spec_for

# Boxes are stored normalized; px/s speeds are judged on a frame of this size.
PREVIEW_FRAME = (1920, 1080)
RECENT = timedelta(hours=24)
MAX_EVENTS = 300


# What a draft may set; everything else (ids, site, names, channels) plays no part in firing.
DRAFT_ZONE_FIELDS = (
    "kind",
    "points",
    "anchor",
    "masks",
    "calibration_points",
    "calibration_width_m",
    "calibration_length_m",
)
DRAFT_RULE_FIELDS = tuple(
    f.name
    for f in AlertRule._meta.concrete_fields
    if f.name not in {"id", "site", "zone", "name", "enabled", "cooldown_s", "severity"}
)


def _known(data: Any, names: Sequence[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    return {name: data[name] for name in names if name in data}


def draft_spec(camera: Camera, zone_data: Any, rule_data: Any) -> ZoneRuleSpec:
    """The engine's spec for an unsaved zone and rule, validated as the admin and API would.

    Raises ValidationError with messages per field (zone fields prefixed "zone.").
    """
    zone = Zone(camera=camera, name="draft", **_known(zone_data, DRAFT_ZONE_FIELDS))
    rule = AlertRule(site=camera.site, name="draft", **_known(rule_data, DRAFT_RULE_FIELDS))
    try:
        zone.full_clean(exclude=["camera", "name"])
    except ValidationError as exc:
        raise ValidationError({f"zone.{k}": v for k, v in exc.message_dict.items()}) from exc
    rule.full_clean(exclude=["site", "zone", "name"])
    try:
        return spec_for(rule, camera, zone)
    except (ValueError, GeometryError) as exc:  # e.g. a crossing rule on an area: the zone decides
        raise ValidationError({"kind": str(exc).split(": ", 1)[-1]}) from exc


@dataclass(frozen=True)
class PreviewHit:
    """A recent tube that would have fired, and why."""

    event_id: int
    track_id: str
    label: str
    fired_at: datetime
    summary: str
    conditions: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "track_id": self.track_id,
            "label": self.label,
            "fired_at": self.fired_at.isoformat(),
            "summary": self.summary,
            "conditions": self.conditions,
        }


def recent_events(camera_id: int, now: datetime) -> list[Event]:
    events = Event.objects.filter(camera_id=camera_id, segment_start__gte=now - RECENT).order_by("-segment_start")
    return list(events[:MAX_EVENTS])


def _frames(events: Sequence[Event]) -> dict[datetime, list[Track]]:
    """Tracks per instant; track ids are positions in `events`."""
    width, height = PREVIEW_FRAME
    frames: dict[datetime, list[Track]] = defaultdict(list)
    for index, event in enumerate(events):
        for t, x1, y1, x2, y2 in event.boxes:
            at = event.segment_start + timedelta(seconds=round(float(t), 3))
            box = (x1 * width, y1 * height, x2 * width, y2 * height)
            frames[at].append(Track(index, event.actor_class, box, event.score, at, at))
    return frames


def _replay(spec: ZoneRuleSpec, frames: dict[datetime, list[Track]]) -> Iterable[RuleHit]:
    engine = ZoneRuleEngine([spec])
    for at in sorted(frames):
        yield from engine.step(frames[at], at, *PREVIEW_FRAME)
    yield from engine.close_all()


def preview_rule(spec: ZoneRuleSpec, events: Sequence[Event]) -> list[PreviewHit]:
    """The first hit of each tube the rule would have fired on, oldest first."""
    first: dict[int, RuleHit] = {}
    for hit in _replay(spec, _frames(events)):
        first.setdefault(hit.track_id, hit)
    return [
        PreviewHit(
            event_id=events[index].pk,
            track_id=events[index].track_id,
            label=hit.label,
            fired_at=hit.last_seen_at,
            summary=hit.summary,
            conditions=hit.explain(),
        )
        for index, hit in sorted(first.items(), key=lambda item: item[1].last_seen_at)
    ]
