"""Zone geometry in normalized coordinates: segment tests, polygon validation, point-in-polygon."""

from __future__ import annotations

import pytest

from detection.geometry import (
    GeometryError,
    point_in_polygon,
    polygon_is_simple,
    segments_intersect,
    validate_line,
    validate_polygon,
)

SQUARE = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]
BOW_TIE = [(0.2, 0.2), (0.8, 0.8), (0.8, 0.2), (0.2, 0.8)]
# A "U" open at the top: the notch (0.4..0.6 wide, 0.2..0.6 tall) is outside.
U_SHAPE = [(0.2, 0.2), (0.4, 0.2), (0.4, 0.6), (0.6, 0.6), (0.6, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]


def test_crossing_segments_intersect():
    assert segments_intersect((0, 0), (1, 1), (0, 1), (1, 0))


def test_a_segment_ending_on_another_touches_it():
    assert segments_intersect((0, 0), (1, 0), (0.5, 0), (0.5, 1))
    assert segments_intersect((0, 0), (1, 0), (1, 0), (2, 5))


def test_collinear_overlapping_segments_intersect():
    assert segments_intersect((0, 0), (0.6, 0), (0.4, 0), (1, 0))


def test_collinear_segments_with_a_gap_do_not_intersect():
    assert not segments_intersect((0, 0), (0.4, 0), (0.6, 0), (1, 0))


def test_disjoint_segments_do_not_intersect():
    assert not segments_intersect((0, 0), (1, 0), (0, 0.5), (1, 0.6))
    # The lines would cross, the segments stop short of it.
    assert not segments_intersect((0, 0), (0.4, 0.4), (0, 1), (1, 0))


def test_a_square_is_simple_and_a_bow_tie_is_not():
    assert polygon_is_simple(SQUARE)
    assert not polygon_is_simple(BOW_TIE)


def test_a_valid_polygon_comes_back_as_float_points():
    assert validate_polygon([[0, 0], [1, 0], [0.5, 1]]) == [(0.0, 0.0), (1.0, 0.0), (0.5, 1.0)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([[0.1, 0.1], [0.9, 0.9]], "at least 3"),
        ([list(p) for p in BOW_TIE], "cross"),
        ([[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.1]], "repeat"),
        ([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]], "no area"),
        ([[0.1, 0.1], [1.5, 0.1], [0.9, 0.9]], "0..1"),
        ([[0.1, 0.1], [-0.1, 0.1], [0.9, 0.9]], "0..1"),
        ([[0.1, 0.1], ["0.9", 0.1], [0.9, 0.9]], "numbers"),
        ([[0.1, 0.1], [True, 0.1], [0.9, 0.9]], "numbers"),
        ([[0.1, 0.1], [0.9], [0.9, 0.9]], "pair"),
        ("0.1,0.1 0.9,0.1 0.9,0.9", "list"),
    ],
)
def test_an_unusable_polygon_is_rejected_with_the_reason(raw, message):
    with pytest.raises(GeometryError, match=message):
        validate_polygon(raw)


def test_a_line_of_two_distinct_points_is_valid():
    assert validate_line([[0.1, 0.5], [0.9, 0.5]]) == [(0.1, 0.5), (0.9, 0.5)]


def test_a_line_through_one_repeated_point_is_rejected():
    with pytest.raises(GeometryError, match="distinct"):
        validate_line([[0.5, 0.5], [0.5, 0.5]])


def test_a_line_of_three_points_is_rejected():
    with pytest.raises(GeometryError, match="exactly 2"):
        validate_line([[0.1, 0.5], [0.5, 0.5], [0.9, 0.5]])


def test_points_inside_and_outside_a_square():
    assert point_in_polygon((0.5, 0.5), SQUARE)
    assert not point_in_polygon((0.9, 0.5), SQUARE)
    assert not point_in_polygon((0.5, 0.1), SQUARE)


def test_points_on_an_edge_or_a_corner_count_as_inside():
    assert point_in_polygon((0.5, 0.2), SQUARE)
    assert point_in_polygon((0.8, 0.5), SQUARE)
    assert point_in_polygon((0.2, 0.8), SQUARE)


def test_the_notch_of_a_concave_polygon_is_outside():
    assert not point_in_polygon((0.5, 0.4), U_SHAPE)
    assert point_in_polygon((0.3, 0.4), U_SHAPE)
    assert point_in_polygon((0.7, 0.4), U_SHAPE)
    assert point_in_polygon((0.5, 0.7), U_SHAPE)
