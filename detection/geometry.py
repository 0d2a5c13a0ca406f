"""Plane geometry for zones, in normalized image coordinates (0..1, origin top-left)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

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


def line_side(p: Point, a: Point, b: Point) -> float:
    """Signed distance of p from the infinite line a->b, in the units of the points.

    Positive on the right of a->b as seen on the image (y grows downwards), negative on its left.
    """
    return _cross(a, b, p) / math.hypot(b[0] - a[0], b[1] - a[1])


def is_convex_quadrilateral(points: Sequence[Point]) -> bool:
    """Four points in order forming a strictly convex quadrilateral (every turn the same way)."""
    if len(points) != 4:
        return False
    turns = [_cross(points[i], points[(i + 1) % 4], points[(i + 2) % 4]) for i in range(4)]
    return all(t > _EPS for t in turns) or all(t < -_EPS for t in turns)


def validate_masks(raw: object) -> list[list[Point]]:
    """Return mask polygons (areas where detections are ignored) or raise GeometryError."""
    if not isinstance(raw, list | tuple):
        raise GeometryError("masks must be a list of polygons")
    masks = []
    for i, polygon in enumerate(raw, start=1):
        try:
            masks.append(validate_polygon(polygon))
        except GeometryError as exc:
            raise GeometryError(f"mask {i}: {exc}") from exc
    return masks


class Homography:
    """A plane-to-plane projective map: normalized image points to metres on the ground.

    Built from 4 image points and the real rectangle they show (width along points 1->2, length
    along points 2->3), so speeds can be measured in m/s whatever the camera's perspective.
    """

    def __init__(self, matrix: Sequence[Sequence[float]]) -> None:
        # Plain floats: mapping one point in Python is several times faster than a numpy call.
        (self.h00, self.h01, self.h02), (self.h10, self.h11, self.h12), (self.h20, self.h21, self.h22) = (
            (float(v) for v in row) for row in matrix
        )

    @classmethod
    def from_points(cls, image: Sequence[Point], world: Sequence[Point]) -> Homography:
        """Solve the 8 unknowns of H (h22 = 1) from 4 point pairs, the direct linear transform."""
        rows, rhs = [], []
        for (x, y), (u, v) in zip(image, world, strict=True):
            rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y])
            rows.append([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y])
            rhs.extend([u, v])
        h = np.linalg.solve(np.array(rows), np.array(rhs))
        return cls([[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]])

    @classmethod
    def from_calibration(cls, image: Sequence[Point], width_m: float, length_m: float) -> Homography:
        world = [(0.0, 0.0), (width_m, 0.0), (width_m, length_m), (0.0, length_m)]
        return cls.from_points(image, world)

    def apply(self, p: Point) -> Point:
        w = self.h20 * p[0] + self.h21 * p[1] + self.h22
        return (
            (self.h00 * p[0] + self.h01 * p[1] + self.h02) / w,
            (self.h10 * p[0] + self.h11 * p[1] + self.h12) / w,
        )


def validate_calibration(raw: object, width_m: float | None, length_m: float | None) -> Homography | None:
    """The ground calibration of a zone (none when no points are given), or GeometryError."""
    if raw in (None, [], ()) and width_m is None and length_m is None:
        return None
    points = _as_points(raw, what="calibration")
    if len(points) != 4:
        raise GeometryError(f"a calibration needs exactly 4 image points, got {len(points)}")
    if not is_convex_quadrilateral(points):
        raise GeometryError("the 4 calibration points must form a convex quadrilateral, in order around it")
    if not (width_m and width_m > 0 and length_m and length_m > 0):
        raise GeometryError("a calibration needs the real width and length of its rectangle, in metres (> 0)")
    return Homography.from_calibration(points, width_m, length_m)
