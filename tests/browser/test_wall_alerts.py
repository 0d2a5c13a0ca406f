"""In a real browser, at tablet size: the wall's alert options are reachable with the keyboard and off
until the operator turns them on (a beep made with the Web Audio API, kept in localStorage; desktop
notifications, asked for only when the button is pressed). A live incident then beeps twice (it is
high severity), shows a desktop notification naming severity, rule and camera, and its severity in
the feed. Runs the real stack for the socket; the screenshot is test-artifacts/wall-alert-options.png."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from monitor.live import incident_event, publish_now, site_group
from monitor.models import AlertRule, Camera, Incident, Membership, Role, Site, Zone
from tests.browser.conftest import ARTIFACTS, Stack
from tests.browser.test_live_alert import PASSWORD, login
from tests.browser.test_zone_editor import in_thread
from tests.conftest import WHOLE_FRAME

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Before the page's scripts: count permission requests and record the notifications shown.
RECORD_NOTIFICATIONS = """
window.__asked = 0; window.__shown = [];
const Real = window.Notification;
function Recording(title, options) {
  window.__shown.push({ title, body: options && options.body });
  return new Real(title, options);
}
Recording.requestPermission = () => { window.__asked += 1; return Real.requestPermission(); };
Object.defineProperty(Recording, "permission", { get: () => Real.permission });
window.Notification = Recording;
"""


@pytest.fixture
def gate(transactional_db: None) -> Camera:
    site = Site.objects.create(name="North gate", timezone="Europe/Paris")
    camera = Camera.objects.create(site=site, name="Gate cam", stream_url="/none.mp4", enabled=False)
    zone = Zone.objects.create(camera=camera, name="Walkway", points=WHOLE_FRAME)
    AlertRule.objects.create(site=site, zone=zone, name="Person on the walkway", severity="high")
    user = User.objects.create_user("guard", password=PASSWORD)
    Membership.objects.create(user=user, site=site, role=Role.OPERATOR)
    return camera


def tab_to(page: Any, element_id: str, most: int = 40) -> list[str]:
    """Press Tab until the element has the focus; returns what took the focus on the way."""
    seen = []
    for _ in range(most):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
        if seen[-1] == element_id:
            return seen
    raise AssertionError(f"#{element_id} never took the focus; the tab order was {seen}")


def focus_ring(page: Any) -> str:
    return page.evaluate("getComputedStyle(document.activeElement).outlineStyle")


def test_the_beep_and_desktop_alerts_are_opt_in_keyboard_reachable_and_fire_on_a_live_incident(
    gate: Camera, live_stack: Stack, browser_page: Any
) -> None:
    page = browser_page
    page.set_viewport_size({"width": 1024, "height": 768})
    page.context.grant_permissions(["notifications"], origin=live_stack.url.rstrip("/"))
    page.add_init_script(RECORD_NOTIFICATIONS)
    login(page, live_stack.url)
    page.wait_for_selector("#conn.ok", timeout=20_000)

    # Off by default, and nothing asked of the browser on page load.
    assert not page.is_checked("#alert-sound")
    assert page.inner_text("#desktop-alerts") == "Enable desktop alerts"
    assert page.evaluate("window.__asked") == 0
    assert page.get_by_label("Beep on new alerts").get_attribute("id") == "alert-sound"  # labelled

    tab_to(page, "alert-sound")
    assert focus_ring(page) != "none"
    page.keyboard.press("Space")
    assert page.is_checked("#alert-sound")
    assert page.evaluate("localStorage.getItem('argus.alertSound')") == "on"
    page.wait_for_function("() => document.getElementById('site').dataset.beeps === '1'")  # a sample beep

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "desktop-alerts" and focus_ring(page) != "none"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('desktop-alerts').textContent === 'Disable desktop alerts'")
    assert page.evaluate("window.__asked") == 1

    def open_incident() -> None:
        rule = AlertRule.objects.get(name="Person on the walkway")
        now = timezone.now()
        incident = Incident.objects.create(
            site=gate.site,
            camera=gate,
            rule=rule,
            title="Person on the walkway: person in Walkway",
            severity="high",
            started_at=now,
            last_seen_at=now,
        )
        publish_now(site_group(gate.site_id), incident_event(incident, opened=True))

    in_thread(open_incident)
    alert = page.wait_for_selector(".alert.new[data-incident-id]", timeout=20_000)
    assert alert.query_selector(".badge.sev-high").inner_text() == "High"
    page.wait_for_function("() => document.getElementById('site').dataset.beeps === '3'")  # high: two beeps
    shown = page.evaluate("window.__shown")
    assert shown == [{"title": "HIGH · Person on the walkway: person in Walkway", "body": "Camera: Gate cam"}]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-alert-options.png"), full_page=True)

    page.reload()
    page.wait_for_selector("#conn.ok", timeout=20_000)
    assert page.is_checked("#alert-sound") and page.inner_text("#desktop-alerts") == "Disable desktop alerts"
