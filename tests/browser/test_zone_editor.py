"""In a real browser: a site admin draws an area zone on the camera's picture, saves it, and gives it
a rule, seeing the model's messages next to the fields first (a self-crossing area, a confidence
above 1). Served by pytest-django's live server: the editor is plain HTTP and the REST API, so no
worker, beat or socket is needed, unlike the live-alert test."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from monitor.media import snapshot_path
from monitor.models import AlertRule, Camera, Event, Membership, Role, Site, Zone
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser]

PASSWORD = "a-long-test-password-1"
T = TypeVar("T")


def in_thread(fn: Callable[[], T]) -> T:
    """Playwright's sync API runs an event loop in this thread, where Django refuses queries."""

    def run() -> T:
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def write_snapshot(camera_id: int) -> None:
    """A 16:9 picture with a 'road' band, so the zone is drawn on something."""
    import cv2
    import numpy as np

    image = np.full((360, 640, 3), (60, 70, 60), dtype=np.uint8)
    image[200:, :] = (90, 90, 90)
    cv2.rectangle(image, (60, 80), (200, 190), (40, 90, 160), -1)
    path = snapshot_path(camera_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(".jpg", image)[1].tobytes())


@pytest.fixture
def yard(transactional_db: None, settings: Any, tmp_path: Path) -> Camera:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    site = Site.objects.create(name="Depot")
    camera = Camera.objects.create(site=site, name="Yard", stream_url=str(tmp_path / "none.mp4"))
    user = User.objects.create_user("chief", password=PASSWORD)
    Membership.objects.create(user=user, site=site, role=Role.ADMIN)
    write_snapshot(camera.pk)
    start = timezone.now() - timedelta(minutes=5)
    boxes = [[float(t), 0.3, 0.5, 0.4, 0.75] for t in range(8)]  # someone standing in the bay for 7 s
    Event.objects.create(
        camera=camera,
        track_id="17",
        segment_start=start,
        segment_end=start + timedelta(seconds=7),
        actor_class="person",
        action="present",
        score=0.9,
        boxes=boxes,
    )
    return camera


def click_at(page: Any, fx: float, fy: float, double: bool = False) -> None:
    box = page.locator("#overlay").bounding_box()
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    if double:
        page.mouse.dblclick(x, y)
    else:
        page.mouse.click(x, y)


def draw_area(page: Any, points: list[tuple[float, float]], close_with_enter: bool) -> None:
    page.get_by_role("button", name="Draw area").click()
    for fx, fy in points[:-1]:
        click_at(page, fx, fy)
    if close_with_enter:
        click_at(page, *points[-1])
        page.keyboard.press("Enter")
    else:
        click_at(page, *points[-1], double=True)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_an_admin_draws_a_zone_and_gives_it_a_rule_seeing_the_models_messages(
    yard: Camera, live_server: Any, browser_page: Any
) -> None:
    page = browser_page
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "chief")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    link = page.get_by_role("link", name="Zones and rules of Yard")
    link.wait_for()
    shot(page, "wall-editor-link.png")
    link.click()
    page.wait_for_selector("#editor[data-ready=true]")
    page.wait_for_function("() => document.getElementById('snapshot').naturalWidth > 0")

    # A self-crossing area: the API answers with the model's message, shown under the form.
    draw_area(page, [(0.1, 0.4), (0.5, 0.9), (0.5, 0.4), (0.1, 0.9)], close_with_enter=True)
    page.fill("#zone-name", "Loading bay")
    page.get_by_role("button", name="Save zone").click()
    error = page.locator('#zone-form [data-error-for="points"]')
    error.wait_for()
    assert "cross" in error.inner_text()
    shot(page, "zone-editor-bad-zone.png")

    bay = [(0.2, 0.45), (0.55, 0.45), (0.6, 0.95), (0.15, 0.95)]
    draw_area(page, bay, close_with_enter=False)  # closed by a double-click this time
    page.fill("#zone-name", "Loading bay")
    page.get_by_role("button", name="Save zone").click()
    page.get_by_role("button", name="Loading bay (area)").wait_for()

    page.get_by_role("button", name="New rule").click()
    page.fill("#rule-name", "Someone in the bay")
    page.fill("#rule-conf", "1.5")
    page.select_option("#rule-sev", "high")
    page.get_by_role("button", name="Save rule").click()
    conf_error = page.locator('#rule-form [data-error-for="min_confidence"]')
    conf_error.wait_for()
    assert "1" in conf_error.inner_text()
    shot(page, "zone-editor-bad-rule.png")

    page.fill("#rule-conf", "0.6")
    page.get_by_role("button", name="Save rule").click()
    page.get_by_role("button", name="Someone in the bay (presence, high)").wait_for()
    assert conf_error.inner_text() == ""

    page.get_by_role("button", name="Preview on recent tubes").click()
    hit = page.locator("#preview-hits li").first
    hit.wait_for()
    assert "track 17" in hit.inner_text()
    shot(page, "zone-editor-saved.png")

    zone, rule = in_thread(lambda: _saved(yard))
    assert zone.kind == "polygon" and len(zone.points) == 4
    assert abs(zone.points[0][0] - 0.2) < 0.02 and abs(zone.points[2][1] - 0.95) < 0.02
    assert (rule.zone_id, rule.min_confidence, rule.severity, rule.kind) == (zone.pk, 0.6, "high", "presence")


def _saved(camera: Camera) -> tuple[Zone, AlertRule]:
    zone = Zone.objects.get(camera=camera, name="Loading bay")
    return zone, AlertRule.objects.get(zone=zone, name="Someone in the bay")


def test_a_directed_line_takes_two_clicks_and_escape_cancels_a_drawing(
    yard: Camera, live_server: Any, browser_page: Any
) -> None:
    page = browser_page
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "chief")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/cameras/{yard.pk}/zones/")
    page.wait_for_selector("#editor[data-ready=true]")

    page.get_by_role("button", name="Draw area").click()
    click_at(page, 0.1, 0.1)
    click_at(page, 0.3, 0.1)
    page.keyboard.press("Escape")
    assert page.locator("#overlay .draft").count() == 0 and page.locator("#zone-panel").is_hidden()

    page.get_by_role("button", name="Draw directed line").click()
    click_at(page, 0.7, 0.2)
    click_at(page, 0.7, 0.9)
    assert page.locator("#overlay .line-zone .arrow").count() == 1
    page.fill("#zone-name", "Gate line")
    page.get_by_role("button", name="Save zone").click()
    page.get_by_role("button", name="Gate line (line)").wait_for()
    shot(page, "zone-editor-line.png")

    zone = in_thread(lambda: Zone.objects.get(camera=yard, name="Gate line"))
    assert zone.kind == "line" and len(zone.points) == 2
    assert zone.points[0][1] < zone.points[1][1]  # drawn downwards: point 1 first
