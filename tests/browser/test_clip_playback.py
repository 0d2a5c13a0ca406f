"""End to end in a real browser: the worker records the clip of an incident it raised from real
footage, and the operator plays it on the incident page, from the first frame to the last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from monitor.models import AlertRule, Camera, Membership, Role, Site, Zone
from tests.browser.conftest import ARTIFACTS, Stack
from tests.browser.test_live_alert import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PRE_ROLL_S, POST_ROLL_S = 2.0, 2.0  # short, so the test is too


@pytest.fixture
def plaza(transactional_db: None, real_footage: Path) -> Site:
    site = Site.objects.create(name="Plaza site")
    camera = Camera.objects.create(
        site=site,
        name="Plaza",
        stream_url=str(real_footage),
        loop=True,
        analysis_fps=4,
        pre_roll_s=PRE_ROLL_S,
        post_roll_s=POST_ROLL_S,
    )
    zone = Zone.objects.create(
        camera=camera, name="Walkway", points=[[0.05, 0.35], [0.95, 0.35], [0.95, 0.98], [0.05, 0.98]]
    )
    AlertRule.objects.create(site=site, zone=zone, name="Person on the walkway", min_duration_s=2.0)
    user = User.objects.create_user("guard", password=PASSWORD)
    Membership.objects.create(user=user, site=site, role=Role.OPERATOR)
    return site


PLAY_TO_THE_END = """async () => {
  const video = document.getElementById("clip-video");
  video.muted = true;
  video.playbackRate = 2;
  const ended = new Promise((resolve) => video.addEventListener("ended", resolve, { once: true }));
  await video.play();
  await ended;
  return { duration: video.duration, currentTime: video.currentTime, width: video.videoWidth };
}"""


def test_the_clip_the_worker_recorded_plays_to_its_end_in_the_browser(
    plaza: Site, live_stack: Stack, browser_page: Any
) -> None:
    page = browser_page
    clip_responses: list[int] = []
    page.on("response", lambda r: clip_responses.append(r.status) if r.url.endswith("/clip.mp4") else None)
    login(page, live_stack.url)
    # A locator, not an element handle: the alert list re-renders as incidents update, and a
    # locator finds the link again instead of clicking a node that was just replaced.
    page.locator(".alert[data-incident-id] a").first.click(timeout=90_000)
    page.wait_for_selector("article.incident")

    # The page shows "recording" first and swaps the player in when the worker has the post-roll.
    page.wait_for_selector("#clip-video", timeout=60_000)
    played = page.evaluate(PLAY_TO_THE_END)

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#clip").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "clip-played.png"), full_page=True)
    assert played["duration"] == pytest.approx(PRE_ROLL_S + POST_ROLL_S, rel=0.1), live_stack.tail()
    assert played["currentTime"] == pytest.approx(played["duration"], abs=0.2), "played to the last frame"
    assert played["width"] == 768, "vtest.avi's own width (under the 960 cap)"
    assert 206 in clip_responses, "the browser fetched the clip in byte ranges"
    assert "clip-failed" not in page.content()
