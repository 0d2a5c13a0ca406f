"""In a real browser: a wrong password is refused, a viewer sees the site but cannot act on it or
administer it, another site stays invisible, an operator can act, and logging out ends the session.
Served by Django's live server; screenshots land in test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from monitor.models import AlertRule, Camera, Incident, Membership, Role, Site, Zone
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_live_alert import PASSWORD
from tests.conftest import WHOLE_FRAME

pytestmark = [pytest.mark.browser]


def make_site(name: str) -> tuple[Site, Camera, Incident]:
    site = Site.objects.create(name=name)
    camera = Camera.objects.create(site=site, name=f"{name} cam", stream_url="/none.mp4", health_state="online")
    zone = Zone.objects.create(camera=camera, name="Walkway", points=WHOLE_FRAME)
    rule = AlertRule.objects.create(site=site, zone=zone, name="Person on the walkway", severity="high")
    at = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    incident = Incident.objects.create(
        site=site,
        camera=camera,
        rule=rule,
        title=f"Person on the walkway at {name}",
        severity="high",
        started_at=at,
        last_seen_at=at + timedelta(seconds=5),
    )
    return site, camera, incident


@pytest.fixture
def sites(transactional_db: None) -> dict[str, Any]:
    a_site, a_camera, a_incident = make_site("North gate")
    b_site, _, b_incident = make_site("Harbour")
    for name, role in (("vera", Role.VIEWER), ("otto", Role.OPERATOR)):
        user = User.objects.create_user(name, password=PASSWORD)
        Membership.objects.create(user=user, site=a_site, role=role)
    return {"a": a_site, "a_camera": a_camera, "a_incident": a_incident, "b": b_site, "b_incident": b_incident}


def log_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def status_of(page: Any, url: str) -> int:
    response = page.goto(url)
    assert response is not None
    return int(response.status)


def test_roles_limit_what_each_user_sees_and_does_and_logout_ends_the_session(
    sites: dict[str, Any], live_server: Any, browser_page: Any
) -> None:
    page, base = browser_page, live_server.url
    ARTIFACTS.mkdir(exist_ok=True)
    a, b = sites["a"], sites["b"]

    log_in(page, base, "vera", "not-the-password")
    page.wait_for_selector("#id_username")
    assert "/login" in page.url and page.locator(".errornote, .errorlist, .error").count() > 0
    page.screenshot(path=str(ARTIFACTS / "login-refused.png"), full_page=True)

    log_in(page, base, "vera")
    page.wait_for_selector("#site")
    assert "North gate" in page.content() and "Harbour" not in page.content()
    page.goto(f"{base}/incidents/{sites['a_incident'].pk}/")
    assert page.locator("h1").inner_text().startswith("Person on the walkway at North gate")
    assert page.locator("button", has_text="Resolve").count() == 0, "a viewer has no action buttons"
    assert page.locator("#export").count() == 0, "nor an export"
    page.screenshot(path=str(ARTIFACTS / "incident-viewer.png"), full_page=True)
    assert status_of(page, f"{base}/sites/{a.pk}/settings/") == 404, "site settings: admins only, hidden"
    assert status_of(page, f"{base}/cameras/{sites['a_camera'].pk}/zones/") == 200
    assert page.locator("[data-can-edit=false]").count() == 1, "the zone editor is read-only for a viewer"
    assert page.locator("fieldset[disabled]").count() >= 1
    assert status_of(page, f"{base}/incidents/{sites['a_incident'].pk}/export.zip") == 403
    for url in (f"{base}/sites/{b.pk}/", f"{base}/incidents/{sites['b_incident'].pk}/"):
        assert status_of(page, url) == 404
        assert "Harbour" not in page.content()

    page.goto(f"{base}/sites/{a.pk}/")
    page.click("text=Log out")
    page.wait_for_selector("#id_username")
    page.goto(f"{base}/sites/{a.pk}/")
    assert "/login" in page.url, "after logout the wall asks for a login again"

    log_in(page, base, "otto")
    page.wait_for_selector("#site")
    page.goto(f"{base}/incidents/{sites['a_incident'].pk}/")
    page.fill("#note", "checked on camera")
    page.click("button:has-text('Acknowledge')")
    page.wait_for_selector("text=Acknowledged")
    page.screenshot(path=str(ARTIFACTS / "incident-operator.png"), full_page=True)
    assert status_of(page, f"{base}/sites/{a.pk}/settings/") == 404, "settings are for site admins"
