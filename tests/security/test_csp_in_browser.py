"""The Content-Security-Policy blocks nothing the dashboard needs: every page, in Chromium, with the
policy enforced, reports no violation, no console error and no script error, and the live socket
(connect-src 'self') comes up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from monitor.models import AlertRule, Camera, ClipStatus, Event, Incident, Membership, Role, Site, Zone
from tests.browser.conftest import Stack
from tests.conftest import WHOLE_FRAME

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "a-long-test-password-1"
# Recorded in the page before any of its scripts run.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}:${e.columnNumber}`));
"""


def write_clip(path: Path, frames: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), i * 10, dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))


@pytest.fixture
def gate(transactional_db: None, tmp_path: Path) -> Incident:
    """A site with a camera, zone, rule and an incident an hour ago with events and a playable clip."""
    at = timezone.now() - timedelta(hours=1)  # inside the activity page's default window
    site = Site.objects.create(name="Gate site")
    camera = Camera.objects.create(site=site, name="Gate", stream_url=str(tmp_path / "none.mp4"), enabled=False)
    zone = Zone.objects.create(camera=camera, name="Everywhere", points=WHOLE_FRAME)
    rule = AlertRule.objects.create(site=site, zone=zone, name="Person at the gate")
    write_clip(tmp_path / "media" / "clips" / "gate.mp4")  # live_stack's MEDIA_ROOT
    incident = Incident.objects.create(
        site=site, camera=camera, rule=rule, title="Person at the gate", started_at=at, last_seen_at=at,
        clip="clips/gate.mp4", clip_status=ClipStatus.READY, clip_started_at=at - timedelta(seconds=1),
    )  # fmt: skip
    for track, (start, end) in enumerate([(0.0, 1.0), (0.5, 1.8)], start=1):
        Event.objects.create(
            camera=camera, rule=rule, incident=incident, track_id=str(track), actor_class="person",
            action="present", score=0.9, segment_start=at + timedelta(seconds=start),
            segment_end=at + timedelta(seconds=end), boxes=[[0.0, 0.1, 0.1, 0.3, 0.6]],
        )  # fmt: skip
    user = User.objects.create_superuser("guard", "guard@example.com", PASSWORD)
    Membership.objects.create(user=user, site=site, role=Role.ADMIN)
    return incident


def blocked_by_csp(message: Any) -> bool:
    """Chromium's console line for a blocked load, style, script or eval (a 404 is not one)."""
    return message.type == "error" and "Content Security Policy" in message.text


def visit(page: Any, url: str, problems: list[str], ready: str | None = None) -> None:
    response = page.goto(url)
    assert "script-src 'self'" in response.headers.get("content-security-policy", ""), f"{url} has no policy"
    if ready:
        page.wait_for_selector(ready, timeout=20_000)
    page.wait_for_load_state("networkidle")
    problems.extend(f"{url}: {v}" for v in page.evaluate("window.__violations"))


def test_no_dashboard_page_breaks_the_content_security_policy(gate: Incident, live_stack: Stack, browser_page: Any):
    page, base = browser_page, live_stack.url.rstrip("/")
    problems: list[str] = []
    page.add_init_script(WATCH_VIOLATIONS)
    page.on("console", lambda m: problems.append(f"console: {m.text}") if blocked_by_csp(m) else None)
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))

    page.goto(f"{base}/login/")
    page.fill("#id_username", "guard")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    site, camera = gate.site_id, gate.camera_id
    visit(page, f"{base}/sites/{site}/", problems, ready="#conn.ok")  # the WebSocket is up
    visit(page, f"{base}/sites/{site}/cameras/", problems, ready="#conn.ok")
    visit(page, f"{base}/sites/{site}/activity/", problems, ready="#conn.ok")
    page.wait_for_selector(".heatmap .js-plotly-plot", timeout=20_000)
    assert page.locator(".js-plotly-plot").count() >= 2  # the heatmap and at least one chart
    # Plotly's own stylesheet applied (under the nonce), not just kept quiet.
    assert page.evaluate("document.getElementById('plotly.js-style-global').sheet.cssRules.length") > 10
    visit(page, f"{base}/sites/{site}/incidents/", problems)
    visit(page, f"{base}/sites/{site}/settings/", problems)
    visit(page, f"{base}/incidents/{gate.pk}/", problems, ready="#timeline")
    page.evaluate("document.getElementById('clip-video').play()")
    page.wait_for_function("() => document.getElementById('clip-video').currentTime > 0.5", timeout=20_000)
    visit(page, f"{base}/cameras/{camera}/zones/", problems)
    visit(page, f"{base}/admin/", problems)
    visit(page, f"{base}/admin/monitor/camera/{camera}/change/", problems)
    visit(page, f"{base}/api/docs/", problems, ready=".swagger-ui .opblock")
    assert problems == [], "\n".join(problems)
