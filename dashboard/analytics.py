"""Activity analytics of a site (or one camera) over a time window: where actors stood (a heatmap per
camera), events per time bin by action and by zone, zone occupancy, and line crossings by direction.

Read-only queries returning plain dicts, the JSON the activity page draws with Plotly. Counting is
done by the database where it can (events per bin); what needs each row (foot points inside the
`boxes` JSON, segment overlaps, crossing directions) reads a bounded number of the newest rows and
says so in the answer (`truncated`), so a site with millions of events still answers quickly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, FloatField, Func, QuerySet, Value
from django.db.models.functions import Floor

from detection.geometry import line_side
from detection.rules import Anchor, CrossingDirection, RuleKind
from monitor.models import Camera, Event, Site, Zone, ZoneKind

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
MAX_WINDOW = timedelta(days=31)  # a custom window longer than this is refused (bins would be too many)
GRID_COLS, GRID_ROWS = 48, 36  # heatmap cells over the picture (4:3; stretched to the snapshot's shape)
MAX_HEATMAP_CAMERAS = 12
MAX_HEATMAP_EVENTS = 4000  # newest events whose boxes feed the heatmaps, shared among the cameras shown
MAX_SAMPLES_PER_EVENT = 40  # a long segment's boxes are thinned to this many (weights keep its time)
MAX_SEGMENTS = 10_000  # newest zone segments / crossings read for occupancy and line counts
LONGEST_STAY = timedelta(days=1)  # occupancy looks this far before the window for stays still going on
NO_ZONE = "(rule deleted)"


@dataclass(frozen=True)
class Bins:
    """Consecutive time bins; `edges` are UTC instants, one more than there are bins."""

    unit: str  # "minute", "hour" or "day", truncated in the site's time zone
    edges: list[datetime]
    tz: ZoneInfo

    @property
    def count(self) -> int:
        return len(self.edges) - 1

    def index(self, at: datetime) -> int | None:
        i = bisect_right(self.edges, at) - 1
        return i if 0 <= i < self.count else None

    def labels(self) -> list[str]:
        """Local wall-clock times: Plotly's date axes know no time zones, so they get the site's."""
        return [e.astimezone(self.tz).strftime("%Y-%m-%d %H:%M") for e in self.edges[:-1]]

    def seconds(self, i: int) -> float:
        return (self.edges[i + 1] - self.edges[i]).total_seconds()


@dataclass(frozen=True)
class ActivityQuery:
    """What to count: a site's events in [start, end), optionally of one camera, class and action."""

    site: Site
    start: datetime
    end: datetime
    camera_id: int | None = None
    actor_class: str = ""
    action: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)

    @cached_property
    def cameras(self) -> list[Camera]:
        cameras = self.site.cameras.order_by("name")
        return list(cameras.filter(pk=self.camera_id) if self.camera_id else cameras)

    @cached_property
    def zone_labels(self) -> dict[int, str]:
        """Zone names for charts, with the camera's name when the answer spans several cameras."""
        zones = Zone.objects.filter(camera__in=self.cameras).select_related("camera")
        several = len(self.cameras) > 1
        return {z.pk: f"{z.camera.name} / {z.name}" if several else z.name for z in zones}

    def events(self) -> QuerySet[Event]:
        """Events of the cameras in view that pass the filters, whenever they happened."""
        events = Event.objects.filter(camera_id__in=[c.pk for c in self.cameras])
        if self.actor_class:
            events = events.filter(actor_class=self.actor_class)
        if self.action:
            events = events.filter(action=self.action)
        return events

    def started(self) -> QuerySet[Event]:
        """Events that began in the window: what the heatmap, the counts and the crossings show."""
        return self.events().filter(segment_start__gte=self.start, segment_start__lt=self.end)

    def overlapping(self) -> QuerySet[Event]:
        """Events in progress at some time of the window (a stay longer than a day is cut)."""
        since = self.start - LONGEST_STAY
        return self.events().filter(segment_start__gte=since, segment_start__lt=self.end, segment_end__gt=self.start)


class EpochSeconds(Func):
    """Whole seconds since 1970 of a datetime column, computed by the database itself (Django's
    Trunc would call Python once per row on SQLite, several seconds for 100k events)."""

    output_field = FloatField()
    template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple[Any, ...]]:
        sql, params = super().as_sql(compiler, connection, template="CAST(strftime(%%s, %(expressions)s) AS REAL)")
        return sql, ("%s", *params)  # strftime's format, as a parameter: a literal % would need escaping


def bin_unit(span: timedelta) -> str:
    if span <= timedelta(hours=3):
        return "minute"
    return "hour" if span <= timedelta(days=8) else "day"


def _floor(at: datetime, unit: str, tz: ZoneInfo) -> datetime:
    local = at.astimezone(tz)
    if unit == "minute":
        return local.replace(second=0, microsecond=0)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return datetime(local.year, local.month, local.day, tzinfo=tz)


def _next(edge: datetime, unit: str, tz: ZoneInfo) -> datetime:
    if unit == "day":  # the next local midnight, 23 or 25 hours away across a daylight-saving change
        day = edge.astimezone(tz).date() + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=tz)
    return edge + (timedelta(minutes=1) if unit == "minute" else timedelta(hours=1))


def make_bins(start: datetime, end: datetime, tz: ZoneInfo) -> Bins:
    unit = bin_unit(end - start)
    edge = _floor(start, unit, tz)
    edges = [edge]
    while edge < end:
        edge = _next(edge, unit, tz)
        edges.append(edge)
    return Bins(unit, [e.astimezone(ZoneInfo("UTC")) for e in edges], tz)


# --- Heatmap ------------------------------------------------------------------------------------


def foot_point(box: Sequence[float]) -> tuple[float, float]:
    """Bottom centre of a normalized (t, x1, y1, x2, y2) box: where a person stands on the ground."""
    _, x1, _, x2, y2 = box[:5]
    return (x1 + x2) / 2, y2


def _weighted_samples(boxes: Sequence[Sequence[float]], frame_s: float) -> Iterable[tuple[Sequence[float], float]]:
    """Each kept box with the seconds it stands for, so a long stay weighs more than a pass."""
    if not boxes:
        return []
    span = float(boxes[-1][0]) - float(boxes[0][0])
    kept = boxes[:: max(1, -(-len(boxes) // MAX_SAMPLES_PER_EVENT))]
    weight = span / len(kept) if span > 0 else frame_s
    return ((box, weight) for box in kept)


def heatmap_grid(rows: Iterable[Sequence[Sequence[float]]], frame_s: float) -> list[list[float]]:
    """Seconds of presence per cell; z[row][col], row 0 at the top of the picture."""
    grid = [[0.0] * GRID_COLS for _ in range(GRID_ROWS)]
    for boxes in rows:
        for box, weight in _weighted_samples(boxes, frame_s):
            x, y = foot_point(box)
            col = min(GRID_COLS - 1, max(0, int(x * GRID_COLS)))
            row = min(GRID_ROWS - 1, max(0, int(y * GRID_ROWS)))
            grid[row][col] += weight
    return [[round(v, 2) for v in row] for row in grid]


def camera_heatmap(query: ActivityQuery, camera: Camera, limit: int) -> dict[str, Any]:
    newest = query.started().filter(camera=camera).order_by("-segment_start")
    rows = list(newest.values_list("boxes", flat=True)[: limit + 1])
    z = heatmap_grid(rows[:limit], frame_s=1.0 / camera.analysis_fps)
    return {
        "camera_id": camera.pk,
        "camera": camera.name,
        "events": len(rows[:limit]),
        "truncated": len(rows) > limit,
        "seconds": round(sum(map(sum, z)), 1),
        "cols": GRID_COLS,
        "rows": GRID_ROWS,
        "z": z,
    }


def heatmaps(query: ActivityQuery) -> list[dict[str, Any]]:
    """One per camera in view; the cameras share the budget of rows read."""
    cameras = query.cameras[:MAX_HEATMAP_CAMERAS]
    limit = max(1, MAX_HEATMAP_EVENTS // max(1, len(cameras)))
    return [camera_heatmap(query, c, limit) for c in cameras]


# --- Events per bin (database side) --------------------------------------------------------------


def _bucket(bins: Bins) -> Floor:
    """Minute or hour of the window, counted from its first bin; day bins add their hours up."""
    step = 60.0 if bins.unit == "minute" else 3600.0
    return Floor((EpochSeconds("segment_start") - Value(bins.edges[0].timestamp())) / Value(step))


def _bucket_start(bins: Bins, bucket: float) -> datetime:
    return bins.edges[0] + timedelta(seconds=int(bucket) * (60 if bins.unit == "minute" else 3600))


def events_per_bin(query: ActivityQuery, bins: Bins) -> dict[str, Any]:
    """Events by the bin they start in, split by action and by zone; counted by the database."""
    binned = query.started().annotate(bucket=_bucket(bins))
    counts = list(binned.values_list("bucket", "action", "rule__zone_id").annotate(n=Count("id")).order_by())
    names = query.zone_labels
    return {
        "by_action": _series(((b, action, n) for b, action, _, n in counts), bins),
        "by_zone": _series(((b, names.get(z, NO_ZONE) if z else NO_ZONE, n) for b, _, z, n in counts), bins),
    }


def _series(rows: Iterable[tuple[float, str, int]], bins: Bins) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for bucket, key, n in rows:
        i = bins.index(_bucket_start(bins, bucket))
        if i is not None:
            out.setdefault(key, [0] * bins.count)[i] += n
    return dict(sorted(out.items()))


# --- Zone occupancy (area zones) ------------------------------------------------------------------

Span = tuple[float, float]  # seconds since 1970, start and end


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping segments of one actor (several rules on one zone) count once."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _spread(series: list[float], edges: list[float], span: Span) -> None:
    """Add the share of each bin that the span covers: summed over actors, the mean number present."""
    start, end = span
    i = max(0, bisect_right(edges, start) - 1)
    while i < len(series) and edges[i] < end:
        covered = min(end, edges[i + 1]) - max(start, edges[i])
        series[i] += max(0.0, covered) / (edges[i + 1] - edges[i])
        i += 1


def occupancy(query: ActivityQuery, bins: Bins) -> dict[str, Any]:
    """Mean number of actors in each area zone per bin, from the segments its rules recorded."""
    events = query.overlapping().filter(rule__zone__kind=ZoneKind.POLYGON).order_by("-segment_start")
    times = (EpochSeconds("segment_start"), EpochSeconds("segment_end"))  # no datetime parsing per row
    rows = list(events.values_list("rule__zone_id", "track_id", *times)[: MAX_SEGMENTS + 1])
    stays: dict[int, dict[str, list[Span]]] = defaultdict(lambda: defaultdict(list))
    for zone_id, track_id, start, end in rows[:MAX_SEGMENTS]:
        stays[zone_id][track_id].append((start, max(end, start)))
    edges = [e.timestamp() for e in bins.edges]
    names = query.zone_labels
    zones = []
    for zone_id in sorted(stays, key=lambda z: names.get(z, "")):
        series = [0.0] * bins.count
        for spans in stays[zone_id].values():
            for span in _merge(spans):
                _spread(series, edges, span)
        zones.append({"zone_id": zone_id, "zone": names.get(zone_id, NO_ZONE), "mean": [round(v, 3) for v in series]})
    return {"zones": zones, "truncated": len(rows) > MAX_SEGMENTS, "limit": MAX_SEGMENTS}


# --- Line crossings (directed-line zones) ----------------------------------------------------------

_DIRECTIONS = (CrossingDirection.LEFT_TO_RIGHT.value, CrossingDirection.RIGHT_TO_LEFT.value)


def anchor_of(box: Sequence[float], anchor: str) -> tuple[float, float]:
    _, x1, y1, x2, y2 = box[:5]
    y = {Anchor.CENTER: (y1 + y2) / 2, Anchor.TOP_CENTER: y1}.get(Anchor(anchor), y2)
    return (x1 + x2) / 2, y


def crossing_direction(zone: Zone, required: str, boxes: Sequence[Sequence[float]]) -> str | None:
    """The rule's direction when it asks for one; else the side the track came from and went to."""
    if required != CrossingDirection.ANY:
        return required
    if len(boxes) < 2:
        return None
    a, b = (float(zone.points[0][0]), float(zone.points[0][1])), (float(zone.points[1][0]), float(zone.points[1][1]))
    before = line_side(anchor_of(boxes[0], zone.anchor), a, b)
    after = line_side(anchor_of(boxes[-1], zone.anchor), a, b)
    if before < 0 < after:
        return CrossingDirection.LEFT_TO_RIGHT
    if after < 0 < before:
        return CrossingDirection.RIGHT_TO_LEFT
    return None


def line_counts(query: ActivityQuery, bins: Bins) -> dict[str, Any]:
    """Crossings per bin and direction for each directed line, from its crossing rules' events."""
    events = query.started().filter(rule__kind=RuleKind.CROSSING)
    fields = ("rule__zone_id", "rule__crossing", "track_id", "segment_start", "boxes")
    rows = list(events.order_by("-segment_start").values_list(*fields)[: MAX_SEGMENTS + 1])
    lines = {z.pk: z for z in Zone.objects.filter(pk__in={r[0] for r in rows}, kind=ZoneKind.LINE)}
    names = query.zone_labels
    counts: dict[int, dict[str, list[int]]] = {}
    seen: set[tuple[int, str, datetime]] = set()
    undetermined = 0
    for zone_id, required, track_id, at, boxes in rows[:MAX_SEGMENTS]:
        zone, i = lines.get(zone_id), bins.index(at)
        if zone is None or i is None or (zone_id, track_id, at) in seen:
            continue
        seen.add((zone_id, track_id, at))  # two rules on one line saw the same crossing
        direction = crossing_direction(zone, required, boxes)
        if direction is None:
            undetermined += 1
            continue
        series = counts.setdefault(zone_id, {d: [0] * bins.count for d in _DIRECTIONS})
        series[direction][i] += 1
    zones = [
        {"zone_id": z, "zone": names.get(z, NO_ZONE), **counts[z]}
        for z in sorted(counts, key=lambda z: names.get(z, ""))
    ]
    return {"zones": zones, "undetermined": undetermined, "truncated": len(rows) > MAX_SEGMENTS, "limit": MAX_SEGMENTS}


# --- All together ---------------------------------------------------------------------------------


def activity(query: ActivityQuery) -> dict[str, Any]:
    """Everything the activity page draws, for one query."""
    bins = make_bins(query.start, query.end, query.tz)
    return {
        "window": {
            "start": query.start.isoformat(),
            "end": query.end.isoformat(),
            "timezone": query.site.timezone,
            "bin": bins.unit,
            "bins": bins.labels(),
        },
        "filters": {"camera": query.camera_id, "actor_class": query.actor_class, "action": query.action},
        "heatmaps": heatmaps(query),
        "per_bin": events_per_bin(query, bins),
        "occupancy": occupancy(query, bins),
        "lines": line_counts(query, bins),
    }
