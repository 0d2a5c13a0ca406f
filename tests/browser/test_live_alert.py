"""End to end in a real browser: a worker analyses real footage, and the alert it raises reaches
the logged-in operator's dashboard without a reload; the incident page then shows it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from monitor.models import AlertRule, Camera, Membership, Role, Site, Zone
from tests.browser.conftest import ARTIFACTS, Stack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def demo_site(transactional_db: None, real_footage: Path) -> Site:
    site = Site.objects.create(name="Plaza site")
    # Disabled until the browser is watching, so that whatever arrives must have come live.
    camera = Camera.objects.create(
        site=site, name="Plaza", stream_url=str(real_footage), loop=True, analysis_fps=4, enabled=False
    )
    zone = Zone.objects.create(
        camera=camera, name="Walkway", points=[[0.05, 0.35], [0.95, 0.35], [0.95, 0.98], [0.05, 0.98]]
    )
    AlertRule.objects.create(site=site, zone=zone, name="Person on the walkway", min_duration_s=2.0)
    user = User.objects.create_user("guard", password=PASSWORD)
    Membership.objects.create(user=user, site=site, role=Role.OPERATOR)
    return site


def enable_cameras(site: Site) -> None:
    """From another thread: Playwright's sync API runs an event loop here, where Django refuses queries."""

    def enable() -> None:
        Camera.objects.filter(site=site).update(enabled=True)
        connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(enable).result()


def login(page: Any, base_url: str) -> None:
    page.goto(base_url)
    page.fill("#id_username", "guard")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_a_live_alert_from_real_footage_reaches_the_dashboard_and_its_incident_page(
    demo_site: Site, live_stack: Stack, browser_page: Any
) -> None:
    page = browser_page
    login(page, live_stack.url)
    page.wait_for_selector("#conn.ok", timeout=20_000)
    assert page.locator(".alert[data-incident-id]").count() == 0
    reloads: list[str] = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url))
    enable_cameras(demo_site)  # the beat dispatches the camera within a second

    # Live detections first: the camera tile counts the people the worker reports.
    page.wait_for_function("() => document.querySelector('.camera').dataset.actors > 0", timeout=60_000)
    alert = page.wait_for_selector(".alert.new[data-incident-id]", timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "live-wall.png"))
    assert reloads == [], "the alert must arrive without a page reload"
    title = alert.query_selector("a").inner_text()
    assert title == "Person on the walkway: person in Walkway"

    alert.query_selector("a").click()
    page.wait_for_selector("article.incident")
    assert page.inner_text("h1") == title
    assert "Plaza" in page.inner_text(".facts")
    assert page.locator("#events tbody tr td").first.inner_text() != "No events."
    page.screenshot(path=str(ARTIFACTS / "incident.png"), full_page=True)
