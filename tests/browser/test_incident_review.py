"""In a real browser: the operator filters the incident list, opens an incident with the keyboard,
and assigns it to a colleague. Served by Django's live server (no worker needed); screenshots land
in test-artifacts/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from monitor.models import AlertRule, Camera, Event, Incident, Membership, Role, Site, Zone
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_live_alert import PASSWORD, login
from tests.conftest import WHOLE_FRAME

pytestmark = [pytest.mark.browser]

STATUSES = ["open", "acknowledged", "resolved", "false_alarm"]


@pytest.fixture
def gate(transactional_db: None) -> Site:
    site = Site.objects.create(name="North gate", timezone="Europe/Paris")
    camera = Camera.objects.create(site=site, name="Gate cam", stream_url="/none.mp4", health_state="online")
    zone = Zone.objects.create(camera=camera, name="Walkway", points=WHOLE_FRAME)
    rule = AlertRule.objects.create(site=site, zone=zone, name="Person on the walkway", severity="high")
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    for n in range(40):
        at = start + timedelta(minutes=7 * n)
        incident = Incident.objects.create(
            site=site,
            camera=camera,
            rule=rule,
            title=f"Person on the walkway: person in Walkway ({n})",
            severity=["low", "medium", "high"][n % 3],
            status=STATUSES[n % 4],
            started_at=at,
            last_seen_at=at + timedelta(seconds=12),
        )
        for track, start_s, end_s in ((2 * n, 0.0, 8.5), (2 * n + 1, 3.0, 12.0)):
            Event.objects.create(
                camera=camera,
                incident=incident,
                track_id=str(track),
                actor_class="person",
                action="present",
                score=0.8,
                segment_start=at + timedelta(seconds=start_s),
                segment_end=at + timedelta(seconds=end_s),
            )
    for name in ("guard", "dana"):
        user = User.objects.create_user(name, password=PASSWORD)
        Membership.objects.create(user=user, site=site, role=Role.OPERATOR)
    return site


def test_an_operator_filters_the_list_opens_an_incident_and_assigns_it(
    gate: Site, live_server: Any, browser_page: Any
) -> None:
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    login(page, f"{live_server.url}/")
    page.wait_for_selector("#site")
    page.goto(f"{live_server.url}/sites/{gate.pk}/incidents/")
    assert page.locator("#incident-list tbody tr").count() == 25
    page.screenshot(path=str(ARTIFACTS / "incident-list.png"), full_page=True)

    page.select_option("#id_status", "acknowledged")
    page.click("#filters button.primary")
    page.wait_for_url("**status=acknowledged**")
    badges = page.locator("#incident-list .badge[class*=status-]").all_inner_texts()
    assert badges and set(badges) == {"Acknowledged"} and len(badges) == 10
    page.screenshot(path=str(ARTIFACTS / "incident-list-filtered.png"), full_page=True)

    page.keyboard.press("j")  # the first incident's link takes focus; Enter opens it
    first = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.wait_for_selector("#assign-form")
    assert page.locator("#timeline li").count() == 2
    assert page.locator("h1").inner_text() in first

    page.select_option("#assignee-select", label="dana (Operator)")
    page.click("#assign-form button")
    page.wait_for_function("() => document.getElementById('assignee').textContent.trim() === 'dana'")
    page.screenshot(path=str(ARTIFACTS / "incident-assigned.png"), full_page=True)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the ORM refuses Playwright's event-loop thread
        assigned = pool.submit(
            lambda: list(Incident.objects.filter(assignee__username="dana").values_list("status"))
        ).result()
    assert assigned == [("acknowledged",)]

    page.set_viewport_size({"width": 800, "height": 1024})  # a tablet, portrait
    page.goto(f"{live_server.url}/sites/{gate.pk}/incidents/")
    page.screenshot(path=str(ARTIFACTS / "incident-list-tablet.png"), full_page=True)
    page.goto(f"{live_server.url}/sites/{gate.pk}/cameras/")
    page.wait_for_selector("tr[data-camera-id]")
    page.screenshot(path=str(ARTIFACTS / "camera-health-tablet.png"), full_page=True)
