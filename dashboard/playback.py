"""The incident player's overlay: every event's tube as boxes on the clip's own clock.

Event.boxes holds [t, x1, y1, x2, y2] rows, normalized to the frame (0..1, origin top-left), with t
in seconds from the first box. For a segment the first box is at segment_start; a crossing hit
carries the second of boxes that led up to the line, so its boxes end at the crossing (segment_end)
instead. The overlay puts both on one clock: seconds from the clip's first frame
(Incident.clip_started_at), which is what <video>.currentTime counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypedDict

from dashboard.review import timeline_bounds
from monitor.models import Event, Incident

# A box stays on screen this long past its tube's last sample (and before its first), so a
# one-sample tube (a crossing seen in one frame) is visible at all.
HOLD_S = 0.5


class OverlayTrack(TypedDict):
    event_id: int
    track_id: str
    label: str  # actor class: person, vehicle
    action: str
    score: float
    start_s: float  # the event's span, seconds from the overlay's origin
    end_s: float
    samples: list[list[float]]  # [t seconds from the origin, x1, y1, x2, y2], t ascending


class Overlay(TypedDict):
    origin: str  # ISO 8601 UTC: what t = 0 is (the clip's first frame, or the incident's start)
    origin_is_clip: bool
    hold_s: float
    timeline: dict[str, float]  # the timeline's span under the player, on the same clock
    tracks: list[OverlayTrack]


def boxes_anchor(event: Event) -> datetime:
    """The wall time of the event's box t = 0 (see the module docstring)."""
    if not event.boxes:
        return event.segment_start
    last_t = float(event.boxes[-1][0])
    span = (event.segment_end - event.segment_start).total_seconds()
    if last_t > span + 1e-3:  # boxes that end at the segment's end, not start at its start
        return event.segment_end - timedelta(seconds=last_t)
    return event.segment_start


def _since(origin: datetime, at: datetime) -> float:
    return round((at - origin).total_seconds(), 3)


def _samples(event: Event, offset_s: float) -> list[list[float]]:
    rows = sorted((float(r[0]), *map(float, r[1:5])) for r in event.boxes if len(r) >= 5)
    return [[round(t + offset_s, 3), *(round(v, 4) for v in box)] for t, *box in rows]


def track_of(event: Event, origin: datetime) -> OverlayTrack:
    return {
        "event_id": event.pk,
        "track_id": event.track_id,
        "label": event.actor_class,
        "action": event.action,
        "score": round(event.score, 3),
        "start_s": _since(origin, event.segment_start),
        "end_s": _since(origin, event.segment_end),
        "samples": _samples(event, _since(origin, boxes_anchor(event))),
    }


def overlay(incident: Incident, events: Sequence[Event]) -> Overlay:
    """The boxes of every event on the clip's clock (the incident's start when there is no clip)."""
    origin = incident.clip_started_at or incident.started_at
    first, last = timeline_bounds(incident, events)
    return {
        "origin": origin.isoformat(),
        "origin_is_clip": incident.clip_started_at is not None,
        "hold_s": HOLD_S,
        "timeline": {"start_s": _since(origin, first), "end_s": _since(origin, last)},
        "tracks": [track_of(e, origin) for e in events],
    }
