"""Activity analytics: known events in, known bins out (heatmap cells, events per bin by action and
zone, zone occupancy, line crossings by direction), the filters, the JSON endpoint and who may read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dashboard import analytics
from dashboard.analytics import GRID_COLS, GRID_ROWS, ActivityQuery, activity, make_bins
from monitor.media import snapshot_path
from monitor.models import AlertRule, Camera, Event, Site, Zone, ZoneKind
from tests.conftest import WHOLE_FRAME

NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 13:00 in Europe/Paris, the site's time zone
HORIZONTAL = [[0.0, 0.5], [1.0, 0.5]]  # a line drawn left to right: its right side is below it


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def event(
    camera: Camera,
    rule: AlertRule | None,
    track: str,
    start: datetime,
    seconds: float = 10.0,
    *,
    boxes: list[list[float]] | None = None,
    actor_class: str = "person",
    action: str = "present",
) -> Event:
    boxes = boxes or [[0.0, 0.1, 0.2, 0.3, 0.5], [seconds, 0.1, 0.2, 0.3, 0.5]]
    return Event.objects.create(
        camera=camera,
        rule=rule,
        track_id=track,
        segment_start=start,
        segment_end=start + timedelta(seconds=seconds),
        actor_class=actor_class,
        action=action,
        score=0.9,
        boxes=boxes,
    )


def query(site: Site, hours: float = 12, **filters: Any) -> ActivityQuery:
    half = timedelta(hours=hours / 2)
    return ActivityQuery(site=site, start=NOON - half, end=NOON + half, **filters)


def cell(z: list[list[float]], x: float, y: float) -> float:
    return z[int(y * GRID_ROWS)][int(x * GRID_COLS)]


@pytest.fixture
def door(site: Site, camera: Camera) -> AlertRule:
    zone = Zone.objects.create(camera=camera, name="Door", kind=ZoneKind.POLYGON, points=WHOLE_FRAME)
    return AlertRule.objects.create(site=site, zone=zone, name="Someone at the door", kind="loitering", dwell_s=5)


@pytest.fixture
def tripwire(site: Site, camera: Camera) -> Zone:
    return Zone.objects.create(camera=camera, name="Tripwire", kind=ZoneKind.LINE, points=HORIZONTAL)


def crossing_rule(site: Site, zone: Zone, crossing: str = "any", name: str = "Crossing") -> AlertRule:
    return AlertRule.objects.create(site=site, zone=zone, name=name, kind="crossing", crossing=crossing)


def walk_down(y_from: float, y_to: float) -> list[list[float]]:
    """Feet at x = 0.5 going from y_from to y_to in one second."""
    return [[0.0, 0.45, y_from - 0.3, 0.55, y_from], [1.0, 0.45, y_to - 0.3, 0.55, y_to]]


# --- Bins ---------------------------------------------------------------------------------------


def test_bins_are_hours_of_the_sites_time_zone_for_a_day_and_minutes_for_an_hour() -> None:
    paris = ZoneInfo("Europe/Paris")
    day = make_bins(NOON - timedelta(hours=24), NOON, paris)
    assert day.unit == "hour" and day.count == 24
    assert day.labels()[0] == "2026-11-23 13:00" and day.labels()[-1] == "2026-11-24 12:00"
    hour = make_bins(NOON - timedelta(minutes=59, seconds=30), NOON, paris)
    assert hour.unit == "minute" and hour.count == 60 and hour.labels()[0] == "2026-11-24 12:00"
    assert make_bins(NOON - timedelta(days=10), NOON, paris).unit == "day"


def test_day_bins_follow_local_midnights_across_a_daylight_saving_change() -> None:
    paris = ZoneInfo("Europe/Paris")
    bins = make_bins(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC), paris)
    lengths = [bins.seconds(i) / 3600 for i in range(bins.count)]
    assert bins.labels()[0] == "2026-10-20 00:00" and set(bins.labels()[i][-5:] for i in range(bins.count)) == {"00:00"}
    assert sorted(set(lengths)) == [24.0, 25.0] and lengths.count(25.0) == 1  # 25 October: clocks go back


# --- Heatmap ------------------------------------------------------------------------------------


def test_the_heatmap_puts_seconds_of_presence_at_the_feet_of_each_box(
    site: Site, camera: Camera, rule: AlertRule
) -> None:
    event(camera, rule, "1", NOON, 10.0)  # feet at (0.2, 0.5) for 10 s, two samples of 5 s
    event(camera, rule, "2", NOON, 0.0, boxes=[[0.0, 0.7, 0.1, 0.9, 0.9]])  # one frame at 2 fps: 0.5 s
    [heatmap] = analytics.heatmaps(query(site))
    z = heatmap["z"]
    assert (len(z), len(z[0])) == (GRID_ROWS, GRID_COLS)
    assert cell(z, 0.2, 0.5) == 10.0 and cell(z, 0.8, 0.9) == 0.5
    assert heatmap["seconds"] == 10.5 and heatmap["events"] == 2 and not heatmap["truncated"]


def test_the_heatmap_reads_only_the_newest_events_and_says_so(
    site: Site, camera: Camera, rule: AlertRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics, "MAX_HEATMAP_EVENTS", 2)
    old = [[0.0, 0.0, 0.0, 0.1, 0.1], [4.0, 0.0, 0.0, 0.1, 0.1]]
    event(camera, rule, "old", NOON - timedelta(hours=1), boxes=old)
    for n in range(2):
        event(camera, rule, f"new-{n}", NOON + timedelta(minutes=n))
    [heatmap] = analytics.heatmaps(query(site))
    assert heatmap["truncated"] and heatmap["events"] == 2
    assert cell(heatmap["z"], 0.05, 0.05) == 0.0  # the oldest one was left out


# --- Events per bin -------------------------------------------------------------------------------


def test_events_are_counted_per_hour_by_action_and_by_zone(
    site: Site, camera: Camera, rule: AlertRule, door: AlertRule
) -> None:
    event(camera, rule, "1", NOON + timedelta(minutes=10))
    event(camera, rule, "2", NOON + timedelta(minutes=20), action="walking")
    event(camera, door, "3", NOON + timedelta(hours=2, minutes=5))
    event(camera, door, "4", NOON - timedelta(days=2))  # long before the window
    data = activity(query(site))
    bins = data["window"]["bins"]
    assert data["window"]["bin"] == "hour" and len(bins) == 12 and bins[6] == "2026-11-24 13:00"
    expected_present = [0] * 12
    expected_present[6], expected_present[8] = 1, 1
    assert data["per_bin"]["by_action"] == {"present": expected_present, "walking": [0] * 6 + [1] + [0] * 5}
    assert data["per_bin"]["by_zone"] == {"Door": [0] * 8 + [1] + [0] * 3, "Everywhere": [0] * 6 + [2] + [0] * 5}


def test_filters_by_actor_class_action_camera_and_window(
    site: Site, camera: Camera, rule: AlertRule, tmp_path: Path
) -> None:
    other = Camera.objects.create(site=site, name="Yard cam", stream_url=str(tmp_path / "y.mp4"))
    event(camera, rule, "person", NOON)
    event(camera, rule, "car", NOON, actor_class="vehicle", action="moving")
    event(other, None, "elsewhere", NOON)

    def total(**filters: Any) -> int:
        return sum(sum(ys) for ys in activity(query(site, **filters))["per_bin"]["by_action"].values())

    assert total() == 3
    assert total(actor_class="vehicle") == 1 and total(action="present") == 2
    assert total(camera_id=other.pk) == 1 and total(camera_id=camera.pk, actor_class="person") == 1
    assert total(hours=0.5) == 3  # 11:45-12:15 still holds them; an hour later none
    later = ActivityQuery(site=site, start=NOON + timedelta(hours=1), end=NOON + timedelta(hours=2))
    assert sum(sum(ys) for ys in activity(later)["per_bin"]["by_action"].values()) == 0
    heatmaps = activity(query(site, actor_class="vehicle"))["heatmaps"]
    assert [h["camera"] for h in heatmaps] == ["Gate cam", "Yard cam"] and [h["events"] for h in heatmaps] == [1, 0]


def test_zone_labels_name_the_camera_when_the_site_has_several(
    site: Site, camera: Camera, rule: AlertRule, tmp_path: Path
) -> None:
    Camera.objects.create(site=site, name="Yard cam", stream_url=str(tmp_path / "y.mp4"))
    event(camera, rule, "1", NOON)
    assert list(activity(query(site))["per_bin"]["by_zone"]) == ["Gate cam / Everywhere"]
    assert list(activity(query(site, camera_id=camera.pk))["per_bin"]["by_zone"]) == ["Everywhere"]


# --- Occupancy and line counts ----------------------------------------------------------------------


def test_occupancy_is_the_mean_number_of_actors_per_bin_counting_each_actor_once(
    site: Site, camera: Camera, rule: AlertRule, door: AlertRule
) -> None:
    door.zone = rule.zone  # a second rule on the same zone sees the same actor
    door.save()
    event(camera, rule, "a", NOON, 30 * 60)  # 12:00-12:30
    event(camera, door, "a", NOON + timedelta(minutes=10), 30 * 60)  # same actor, 12:10-12:40
    event(camera, rule, "b", NOON + timedelta(minutes=45), 30 * 60)  # 12:45-13:15
    occupancy = activity(query(site))["occupancy"]
    [zone] = occupancy["zones"]
    assert zone["zone"] == "Everywhere" and not occupancy["truncated"]
    hour_12, hour_13 = zone["mean"][6], zone["mean"][7]
    assert hour_12 == pytest.approx(40 / 60 + 15 / 60, abs=1e-3) and hour_13 == pytest.approx(15 / 60, abs=1e-3)
    assert sum(zone["mean"]) == pytest.approx(hour_12 + hour_13)


def test_line_counts_split_crossings_by_direction(site: Site, camera: Camera, tripwire: Zone) -> None:
    either_way = crossing_rule(site, tripwire)
    downwards_only = crossing_rule(site, tripwire, crossing="right_to_left", name="Upwards")
    event(camera, either_way, "1", NOON + timedelta(minutes=1), 0, boxes=walk_down(0.4, 0.6))  # onto the right
    event(camera, either_way, "2", NOON + timedelta(minutes=2), 0, boxes=walk_down(0.6, 0.4))
    event(camera, either_way, "3", NOON + timedelta(minutes=3), 0, boxes=walk_down(0.7, 0.6))  # never crossed
    event(camera, downwards_only, "4", NOON + timedelta(hours=1), 0, boxes=walk_down(0.6, 0.4))
    lines = activity(query(site))["lines"]
    [line] = lines["zones"]
    assert line["zone"] == "Tripwire" and lines["undetermined"] == 1
    assert sum(line["left_to_right"]) == 1 and line["left_to_right"][6] == 1
    assert line["right_to_left"][6] == 1 and line["right_to_left"][7] == 1


def test_the_answer_takes_a_fixed_number_of_queries_whatever_the_number_of_events(
    site: Site, camera: Camera, rule: AlertRule, tripwire: Zone
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            activity(query(site))
        return len(captured)

    event(camera, rule, "0", NOON)
    few = queries()
    crossing = crossing_rule(site, tripwire)
    for n in range(1, 30):
        event(camera, rule if n % 2 else crossing, str(n), NOON + timedelta(minutes=n), boxes=walk_down(0.4, 0.6))
    assert queries() == few + 1  # the line zones, read once when there are crossings


# --- The endpoint and the page ----------------------------------------------------------------------


def data_url(site: Site) -> str:
    return reverse("dashboard:activity-data", args=[site.pk])


@pytest.mark.parametrize("member", ["viewer", "operator", "owner"])
def test_every_member_reads_the_json_with_its_documented_shape(
    member: str,
    request: pytest.FixtureRequest,
    site: Site,
    camera: Camera,
    rule: AlertRule,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    snapshot_path(camera.pk).parent.mkdir(parents=True)
    snapshot_path(camera.pk).write_bytes(b"\xff\xd8picture")
    client = logged_in(request.getfixturevalue(member))
    event(camera, rule, "1", datetime.now(UTC) - timedelta(minutes=5))
    response = client.get(data_url(site), {"window": "1h", "actor_class": "person"})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"window", "filters", "heatmaps", "per_bin", "occupancy", "lines"}
    assert data["window"]["bin"] == "minute" and data["window"]["timezone"] == "Europe/Paris"
    assert data["filters"] == {"camera": None, "actor_class": "person", "action": ""}
    [heatmap] = data["heatmaps"]
    assert heatmap["snapshot_url"] == reverse("dashboard:camera-snapshot", args=[camera.pk])
    assert heatmap["seconds"] == 10.0
    assert sum(data["per_bin"]["by_action"]["present"]) == 1
    assert data["occupancy"]["zones"][0]["zone"] == "Everywhere" and data["lines"]["zones"] == []


def test_outsiders_get_404_and_strangers_the_login_page(outsider: User, site: Site, camera: Camera) -> None:
    client = logged_in(outsider)
    for url in (data_url(site), reverse("dashboard:activity", args=[site.pk])):
        assert client.get(url).status_code == 404
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_bad_filters_get_400_with_the_reason(viewer: User, site: Site, other_site: Site) -> None:
    foreign = Camera.objects.create(site=other_site, name="Theirs", stream_url="/t.mp4")
    client = logged_in(viewer)
    assert client.get(data_url(site), {"camera": foreign.pk}).status_code == 400
    backwards = {"window": "custom", "start": "2026-11-24T13:00", "end": "2026-11-24T12:00"}
    response = client.get(data_url(site), backwards)
    assert response.status_code == 400 and "after the start" in response.content.decode()
    too_long = {"window": "custom", "start": "2026-01-01T00:00", "end": "2026-03-01T00:00"}
    assert client.get(data_url(site), too_long).status_code == 400


def test_a_custom_window_is_read_in_the_sites_time_zone(
    viewer: User, site: Site, camera: Camera, rule: AlertRule
) -> None:
    event(camera, rule, "1", NOON + timedelta(minutes=30))  # 13:30 in Paris
    window = {"window": "custom", "start": "2026-11-24T13:00", "end": "2026-11-24T15:00"}
    data = logged_in(viewer).get(data_url(site), window).json()
    assert data["window"]["start"] == "2026-11-24T13:00:00+01:00" and data["window"]["bin"] == "minute"
    assert data["window"]["bins"][30] == "2026-11-24 13:30" and data["per_bin"]["by_action"]["present"][30] == 1


def test_the_page_is_linked_from_the_site_nav_and_loads_plotly_from_our_static_files(
    viewer: User, site: Site, camera: Camera
) -> None:
    client = logged_in(viewer)
    page_url = reverse("dashboard:activity", args=[site.pk])
    wall = client.get(reverse("dashboard:site", args=[site.pk])).content.decode()
    assert f'href="{page_url}"' in wall
    page = client.get(page_url, {"camera": camera.pk}).content.decode()
    assert '<script src="/static/vendor/plotly.min.js"' in page and "cdn" not in page.lower()
    assert f'<option value="{camera.pk}" selected>Gate cam</option>' in page
    assert 'aria-current="page">Activity</a>' in page
    found = finders.find("vendor/plotly.min.js")
    assert isinstance(found, str) and Path(found).read_bytes()[:40].lstrip().startswith(b"/**")
    assert b"plotly.js v" in Path(found).read_bytes()[:100]
