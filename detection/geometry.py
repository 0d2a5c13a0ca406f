"""Plane geometry for zones, in normalized image coordinates (0..1, origin top-left)."""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]

_EPS = 1e-12


class GeometryError(ValueError):
    """A zone shape that cannot be used; the message says why, for the operator."""


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return min(a[0], b[0]) - _EPS <= p[0] <= max(a[0], b[0]) + _EPS and (
        min(a[1], b[1]) - _EPS <= p[1] <= max(a[1], b[1]) + _EPS
    )


def segments_intersect(a1: Point, a2: Point, b1: Point, b2: Point) -> bool:
    """True when the closed segments a1-a2 and b1-b2 share at least one point."""
    d1, d2 = _cross(b1, b2, a1), _cross(b1, b2, a2)
    d3, d4 = _cross(a1, a2, b1), _cross(a1, a2, b2)
    if ((d1 > _EPS and d2 < -_EPS) or (d1 < -_EPS and d2 > _EPS)) and (
        (d3 > _EPS and d4 < -_EPS) or (d3 < -_EPS and d4 > _EPS)
    ):
        return True
    # Touching or collinear cases.
    return (
        (abs(d1) <= _EPS and _on_segment(a1, b1, b2))
        or (abs(d2) <= _EPS and _on_segment(a2, b1, b2))
        or (abs(d3) <= _EPS and _on_segment(b1, a1, a2))
        or (abs(d4) <= _EPS and _on_segment(b2, a1, a2))
    )


def polygon_area(points: Sequence[Point]) -> float:
    """Signed area (shoelace); positive when the points run counter-clockwise in math axes."""
    total = 0.0
    for i, (x1, y1) in enumerate(points):
        x2, y2 = points[(i + 1) % len(points)]
        total += x1 * y2 - x2 * y1
    return total / 2.0


def polygon_is_simple(points: Sequence[Point]) -> bool:
    """True when no two non-adjacent edges of the closed polygon touch or cross."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            adjacent = j == i + 1 or (i == 0 and j == n - 1)
            if adjacent:
                continue
            if segments_intersect(*edges[i], *edges[j]):
                return False
    return True


def _as_points(raw: object, *, what: str) -> list[Point]:
    if not isinstance(raw, list | tuple):
        raise GeometryError(f"{what} must be a list of [x, y] points")
    points: list[Point] = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise GeometryError(f"{what}: each point must be a pair [x, y], got {item!r}")
        x, y = item
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
            raise GeometryError(f"{what}: coordinates must be numbers, got {item!r}")
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise GeometryError(f"{what}: coordinates are normalized to 0..1, got {item!r}")
        points.append((float(x), float(y)))
    return points


def validate_polygon(raw: object) -> list[Point]:
    """Return the points of a usable polygon zone or raise GeometryError saying what is wrong."""
    points = _as_points(raw, what="polygon")
    if len(points) < 3:
        raise GeometryError(f"a polygon needs at least 3 points, got {len(points)}")
    if len(set(points)) != len(points):
        raise GeometryError("a polygon may not repeat a point")
    if not polygon_is_simple(points):
        raise GeometryError("the polygon's edges cross each other")
    if abs(polygon_area(points)) < 1e-6:
        raise GeometryError("the polygon has no area")
    return points


def validate_line(raw: object) -> list[Point]:
    """Return the two points of a directed line (tripwire) or raise GeometryError."""
    points = _as_points(raw, what="line")
    if len(points) != 2:
        raise GeometryError(f"a line needs exactly 2 points, got {len(points)}")
    if points[0] == points[1]:
        raise GeometryError("a line needs 2 distinct points")
    return points


def point_in_polygon(p: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; points on an edge count as inside."""
    inside = False
    n = len(polygon)
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        if abs(_cross(a, b, p)) <= _EPS and _on_segment(p, a, b):
            return True
        if (a[1] > p[1]) != (b[1] > p[1]):
            x_at_y = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            if p[0] < x_at_y:
                inside = not inside
    return inside
