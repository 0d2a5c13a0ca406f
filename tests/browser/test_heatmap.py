"""In a real browser: a viewer opens the site's activity page from the nav, sees a heatmap of where
people stood over the camera's picture and the charts, narrows it to vehicles, and watches it grow
when a new incident arrives on the site's socket. Runs the real stack (Daphne for the socket);
screenshots land in test-artifacts/activity-*.png."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from monitor.live import incident_event, publish_now, site_group
from monitor.media import snapshot_path
from monitor.models import AlertRule, Camera, Event, Incident, Membership, Role, Site, Zone, ZoneKind
from tests.browser.conftest import ARTIFACTS, Stack
from tests.browser.test_live_alert import PASSWORD, login
from tests.browser.test_zone_editor import in_thread

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WALKWAY = [[0.05, 0.6], [0.95, 0.6], [0.95, 0.95], [0.05, 0.95]]
GATE_LINE = [[0.5, 0.55], [0.5, 0.98]]  # vertical, drawn downwards: its right side is the left half


def write_plaza_snapshot(camera_id: int) -> None:
    """A 4:3 picture: sky, a building, a road (vehicles) and a paved walkway (people)."""
    import cv2
    import numpy as np

    image = np.full((480, 640, 3), (120, 110, 100), dtype=np.uint8)
    image[:120] = (170, 140, 110)
    cv2.rectangle(image, (40, 40), (260, 200), (70, 80, 110), -1)
    image[150:280] = (70, 70, 70)  # road
    image[290:470] = (150, 160, 165)  # walkway
    for x in range(0, 640, 60):
        cv2.line(image, (x, 215), (x + 30, 215), (220, 220, 220), 3)
    path = snapshot_path(camera_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(".jpg", image)[1].tobytes())


def stand(x: float, y: float, seconds: int, h: float = 0.25) -> list[list[float]]:
    """Feet at (x, y) for this long, a sample a second."""
    return [[float(t), x - 0.03, y - h, x + 0.03, y] for t in range(seconds + 1)]


def walk(x_from: float, x_to: float, y: float, seconds: int) -> list[list[float]]:
    step = (x_to - x_from) / seconds
    return [[float(t), x_from + t * step - 0.03, y - 0.25, x_from + t * step + 0.03, y] for t in range(seconds + 1)]


def add_event(camera: Camera, rule: AlertRule, track: str, at: datetime, boxes: list[list[float]], cls: str) -> None:
    Event.objects.create(
        camera=camera,
        rule=rule,
        track_id=track,
        segment_start=at,
        segment_end=at + timedelta(seconds=boxes[-1][0]),
        actor_class=cls,
        action="present" if cls == "person" else "moving",
        score=0.9,
        boxes=boxes,
    )


@pytest.fixture
def plaza(transactional_db: None, settings: Any, tmp_path: Path) -> Camera:
    settings.MEDIA_ROOT = str(tmp_path / "media")  # where live_stack's server reads media too
    site = Site.objects.create(name="Plaza site", timezone="Europe/Paris")
    camera = Camera.objects.create(site=site, name="Plaza", stream_url="/none.mp4", enabled=False)
    walkway = Zone.objects.create(camera=camera, name="Walkway", points=WALKWAY)
    line = Zone.objects.create(camera=camera, name="Gate line", kind=ZoneKind.LINE, points=GATE_LINE)
    on_walkway = AlertRule.objects.create(site=site, zone=walkway, name="Person on the walkway", actor_class="any")
    crossing = AlertRule.objects.create(site=site, zone=line, name="Through the gate", kind="crossing")
    now = timezone.now()
    for n in range(24):  # people walking along the walkway, a few standing by the door
        at = now - timedelta(minutes=50 - 2 * n)
        add_event(camera, on_walkway, f"p{n}", at, walk(0.15, 0.85, 0.8 + (n % 4) * 0.03, 20), "person")
        if n % 3 == 0:
            add_event(camera, on_walkway, f"s{n}", at, stand(0.3, 0.7, 60), "person")
        add_event(camera, crossing, f"p{n}", at + timedelta(seconds=10), walk(0.48, 0.52, 0.85, 1), "person")
    for n in range(10):  # vehicles on the road
        add_event(camera, on_walkway, f"v{n}", now - timedelta(minutes=40 - 3 * n), walk(0.9, 0.1, 0.45, 8), "vehicle")
    write_plaza_snapshot(camera.pk)
    user = User.objects.create_user("guard", password=PASSWORD)
    Membership.objects.create(user=user, site=site, role=Role.VIEWER)
    return camera


HEAT = "document.querySelector('#heatmaps .heatmap-plot')"


def heat_at(page: Any, x: float, y: float) -> float:
    """Seconds of presence in the heatmap cell under the normalized picture point (x, y), as drawn."""
    return page.evaluate(
        f"""([x, y]) => {{
            const seconds = {HEAT}.data[0].customdata;
            return seconds[Math.floor(y * seconds.length)][Math.floor(x * seconds[0].length)];
        }}""",
        [x, y],
    )


def hottest_colour_value(page: Any) -> float:
    return page.evaluate(f"Math.max(...{HEAT}.data[0].z.flat())")


def wait_for_render(page: Any, after: int) -> int:
    """Until the page drew an answer newer than render number `after`; returns the new number."""
    page.wait_for_function(
        "(after) => { const el = document.getElementById('activity');"
        " return Number(el.dataset.renders) > after && el.dataset.state === 'ready'; }",
        arg=after,
        timeout=20_000,
    )
    return int(page.get_attribute("#activity", "data-renders"))


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_viewer_sees_where_people_stood_filters_to_vehicles_and_gets_live_updates(
    plaza: Camera, live_stack: Stack, browser_page: Any
) -> None:
    page = browser_page
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, live_stack.url)
    page.get_by_role("link", name="Activity").click()
    page.wait_for_selector("#activity")
    renders = wait_for_render(page, 0)
    page.wait_for_selector("#conn.ok", timeout=20_000)

    # The heatmap is drawn over the camera's picture, hot where people walked and stood.
    kind, pictures = page.evaluate(f"(() => {{ const gd = {HEAT}; return [gd.data[0].type, gd.layout.images]; }})()")
    assert kind == "heatmap" and len(pictures) == 1 and "/snapshot.jpg" in pictures[0]["source"]
    assert page.locator("#heatmaps .heatmap-plot .hm image").count() == 1  # Plotly painted the cells
    assert heat_at(page, 0.3, 0.7) > 60 and heat_at(page, 0.5, 0.3) == 0
    assert hottest_colour_value(page) > 0  # the trace's z (what the colours show) has heat too
    assert heat_at(page, 0.5, 0.46) > 0  # vehicles on the road
    assert page.evaluate("document.getElementById('chart-action').data.length") == 2  # present, moving
    lines = page.evaluate(
        "document.getElementById('chart-lines').data.map(t => [t.name, t.y.reduce((a, b) => a + b, 0)])"
    )
    assert lines == [["Gate line: left → right", 0], ["Gate line: right → left", 24]]
    shot(page, "activity.png")

    # Vehicles only: the walkway goes cold, the road stays warm.
    page.get_by_label("Actor class").select_option("vehicle")  # labelled controls
    renders = wait_for_render(page, renders)
    assert "actor_class=vehicle" in page.url
    assert heat_at(page, 0.3, 0.7) == 0 and heat_at(page, 0.5, 0.46) > 0
    assert page.evaluate("document.getElementById('chart-action').data.map(t => t.name)") == ["moving"]
    shot(page, "activity-vehicles.png")

    # A new incident on the socket: the page re-reads and someone now stands by the building.
    page.select_option("#id_actor_class", "")
    renders = wait_for_render(page, renders)
    assert heat_at(page, 0.2, 0.35) == 0

    def new_incident() -> None:
        rule = AlertRule.objects.get(name="Person on the walkway")
        now = timezone.now()
        add_event(plaza, rule, "late", now - timedelta(seconds=30), stand(0.2, 0.35, 30), "person")
        incident = Incident.objects.create(
            site=plaza.site,
            camera=plaza,
            rule=rule,
            title="Person on the walkway: person in Walkway",
            started_at=now,
            last_seen_at=now,
        )
        publish_now(site_group(plaza.site_id), incident_event(incident, opened=True))

    in_thread(new_incident)
    renders = wait_for_render(page, renders)
    assert heat_at(page, 0.2, 0.35) > 0

    # A custom window, typed in the site's time zone: its times show up only for it; two hours in minutes.
    assert not page.is_visible("#id_start")
    page.get_by_label("Time window").select_option("custom")
    paris = timezone.localtime(timezone.now(), ZoneInfo("Europe/Paris"))
    page.get_by_label("From:", exact=True).fill(f"{paris - timedelta(hours=2):%Y-%m-%dT%H:%M}")
    page.get_by_label("To:", exact=True).fill(f"{paris:%Y-%m-%dT%H:%M}")
    renders = wait_for_render(page, renders)
    assert "window=custom" in page.url
    assert page.evaluate("document.getElementById('chart-action').data[0].x.length") == 120  # minutes
    assert heat_at(page, 0.3, 0.7) > 60

    # Tablet size: nothing sticks out sideways.
    page.set_viewport_size({"width": 1024, "height": 768})
    page.wait_for_timeout(800)  # the heatmap redraws at the new width
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    shot(page, "activity-1024.png")
    assert blocked == [], blocked
