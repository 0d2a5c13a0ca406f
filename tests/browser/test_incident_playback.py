"""In a real browser: the incident player draws the actors' boxes over the clip in step with playback.

The clip is a real H.264 mp4 of a white square sliding right, and the incident's event carries the
square's boxes. Played in Chromium, the overlay's box is where the event data says at two playback
times, and around the square of the frame on screen; it stays while paused, follows a letterboxed
resize, and the timeline seeks. Then the operator acknowledges and resolves with a note. Served by
Django's live server (no worker needed); screenshots land in test-artifacts/.
"""

from __future__ import annotations

import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.db import connection

from monitor.models import AlertRule, AuditLog, Camera, ClipStatus, Event, Incident, Membership, Role, Site, Zone
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_live_alert import PASSWORD, login
from tests.conftest import WHOLE_FRAME

pytestmark = [pytest.mark.browser]

W, H, FPS, SECONDS = 640, 360, 10, 6
CLIP_START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MOVE_FROM_S, MOVE_TO_S = 1.0, 5.0  # the event's span, on the clip's clock
SQUARE_W, SQUARE_H, SQUARE_Y = 0.1, 0.2, 0.4
VAN = [0.72, 0.62, 0.94, 0.9]  # a parked vehicle: the second event, still


def square_x(t: float) -> float:
    """The square's left edge (normalized) at clip time t: 0.1 until 1 s, sliding to 0.7 at 5 s."""
    return 0.1 + 0.15 * min(max(t - MOVE_FROM_S, 0.0), MOVE_TO_S - MOVE_FROM_S)


def expected_box(t: float) -> list[float]:
    x = square_x(t)
    return [x, SQUARE_Y, x + SQUARE_W, SQUARE_Y + SQUARE_H]


def frame_at(t: float) -> np.ndarray:
    image = np.full((H, W, 3), 40, dtype=np.uint8)
    vx1, vy1, vx2, vy2 = (round(v * s) for v, s in zip(VAN, (W, H, W, H), strict=True))
    image[vy1:vy2, vx1:vx2] = (70, 90, 140)  # dim: only the square is bright
    x1, y1, x2, y2 = (round(v * s) for v, s in zip(expected_box(t), (W, H, W, H), strict=True))
    image[y1:y2, x1:x2] = 255
    return image


def write_clip(path: Path) -> None:
    """H.264 in mp4 (yuv420p, faststart), as the recorder writes clips, so Chromium plays it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "18", "g": str(FPS)}  # a keyframe a second: seeks land exactly
        for n in range(FPS * SECONDS):
            frame = av.VideoFrame.from_ndarray(frame_at(n / FPS), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture
def incident(transactional_db: None, settings: Any, tmp_path: Path) -> Incident:
    settings.MEDIA_ROOT = tmp_path
    write_clip(tmp_path / "clips" / "square.mp4")
    site = Site.objects.create(name="Depot", timezone="Europe/Paris")
    camera = Camera.objects.create(site=site, name="Yard cam", stream_url="/none.mp4")
    zone = Zone.objects.create(camera=camera, name="Yard", points=WHOLE_FRAME)
    rule = AlertRule.objects.create(site=site, zone=zone, name="Person in the yard")
    incident = Incident.objects.create(
        site=site,
        camera=camera,
        rule=rule,
        title="Person in the yard: person in Yard",
        started_at=CLIP_START + timedelta(seconds=MOVE_FROM_S),
        last_seen_at=CLIP_START + timedelta(seconds=MOVE_TO_S),
        clip="clips/square.mp4",
        clip_status=ClipStatus.READY,
        clip_started_at=CLIP_START,
        track_ids=[4, 12],
    )
    samples = [0.5 * i for i in range(9)]  # every half second of the segment, as the rule engine samples
    Event.objects.create(
        camera=camera,
        rule=rule,
        incident=incident,
        track_id="4",
        segment_start=CLIP_START + timedelta(seconds=MOVE_FROM_S),
        segment_end=CLIP_START + timedelta(seconds=MOVE_TO_S),
        actor_class="person",
        action="present",
        score=0.91,
        boxes=[[t, *expected_box(MOVE_FROM_S + t)] for t in samples],
    )
    Event.objects.create(
        camera=camera,
        rule=rule,
        incident=incident,
        track_id="12",
        segment_start=CLIP_START + timedelta(seconds=2),
        segment_end=CLIP_START + timedelta(seconds=4),
        actor_class="vehicle",
        action="present",
        score=0.78,
        boxes=[[0.0, *VAN], [2.0, *VAN]],
    )
    user = User.objects.create_user("guard", password=PASSWORD)
    Membership.objects.create(user=user, site=site, role=Role.OPERATOR)
    return incident


# Plays from where the clip is until `until` seconds, pauses, and reports what is on screen: the
# overlay's boxes, the element's size, and the bright square found in the video frame itself.
PLAY_UNTIL = """async (until) => {
  const video = document.getElementById("clip-video");
  video.muted = true;
  await video.play();
  await new Promise((resolve) => {
    const tick = () => (video.currentTime >= until ? resolve() : requestAnimationFrame(tick));
    tick();
  });
  const paused = new Promise((resolve) => video.addEventListener("pause", resolve, { once: true }));
  video.pause();
  await paused;
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return window.onScreen();
}"""

ON_SCREEN = """() => {
  window.onScreen = () => {
    const video = document.getElementById("clip-video");
    const canvas = document.getElementById("clip-overlay");
    const grab = document.createElement("canvas");
    grab.width = video.videoWidth; grab.height = video.videoHeight;
    const g = grab.getContext("2d", { willReadFrequently: true });
    g.drawImage(video, 0, 0);
    const pixels = g.getImageData(0, 0, grab.width, grab.height).data;
    let x1 = grab.width, y1 = grab.height, x2 = -1, y2 = -1;
    for (let y = 0; y < grab.height; y++) for (let x = 0; x < grab.width; x++) {
      const i = 4 * (y * grab.width + x);
      if (pixels[i] > 200 && pixels[i + 1] > 200 && pixels[i + 2] > 200) {
        x1 = Math.min(x1, x); y1 = Math.min(y1, y); x2 = Math.max(x2, x + 1); y2 = Math.max(y2, y + 1);
      }
    }
    const ink = (x, y) => {
      const dpr = window.devicePixelRatio || 1;
      return canvas.getContext("2d").getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data[3];
    };
    const boxes = JSON.parse(canvas.dataset.boxes || "[]");
    const square = boxes.find((b) => b.track === "4");
    return {
      time: video.currentTime,
      drawnAt: parseFloat(canvas.dataset.time),
      boxes,
      element: [video.clientWidth, video.clientHeight],
      canvas: [canvas.offsetLeft - video.offsetLeft, canvas.offsetTop - video.offsetTop,
               canvas.clientWidth, canvas.clientHeight],
      frameSquare: [x1 / grab.width, y1 / grab.height, x2 / grab.width, y2 / grab.height],
      // the outline is drawn, its inside is not
      inkOnEdge: square ? ink(square.box[0], (square.box[1] + square.box[3]) / 2) : null,
      inkInside: square ? ink((square.box[0] + square.box[2]) / 2, (square.box[1] + square.box[3]) / 2) : null,
    };
  };
}"""


# A 640 x 480 element for the 640 x 360 clip: object-fit (contain) puts 60 px bars above and below.
LETTERBOX = """() => Object.assign(document.getElementById("clip-video").style, { width: "640px", height: "480px" })"""

# Where each timeline bar starts and how wide it is, as shares of its track.
BAR_SHARES = """() => [...document.querySelectorAll("#timeline .tl-track")].map((track) => {
  const t = track.getBoundingClientRect(), b = track.querySelector(".tl-bar").getBoundingClientRect();
  return [(b.left - t.left) / t.width, b.width / t.width];
}).flat()"""


def drawn(screen: dict[str, Any], track: str) -> list[float]:
    (box,) = [b["box"] for b in screen["boxes"] if b["track"] == track]
    return box


def normalized(box: list[float], left: float, top: float, width: float, height: float) -> list[float]:
    return [(box[0] - left) / width, (box[1] - top) / height, (box[2] - left) / width, (box[3] - top) / height]


def assert_square_boxed(screen: dict[str, Any]) -> None:
    """The overlay's box is where the event data puts it at the paused time, and on the square."""
    width, height = screen["element"]
    assert width / height == pytest.approx(W / H, abs=0.01), "no letterbox here: the element keeps the clip's shape"
    box = normalized(drawn(screen, "4"), 0, 0, width, height)
    assert screen["drawnAt"] == pytest.approx(screen["time"], abs=1e-3), "drawn for the time on screen"
    assert box == pytest.approx(expected_box(screen["time"]), abs=0.005)
    assert box == pytest.approx(screen["frameSquare"], abs=0.03), "around the square of the frame shown"
    assert screen["inkOnEdge"] > 0 and screen["inkInside"] == 0


def shot(page: Any, name: str) -> None:
    page.locator("#clip").screenshot(path=str(ARTIFACTS / name))


def test_the_overlay_follows_the_actor_through_playback_and_the_operator_resolves_it(
    incident: Incident, live_server: Any, browser_page: Any
) -> None:
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    refused: list[str] = []  # script errors, and whatever the Content-Security-Policy blocks
    page.on("pageerror", lambda error: refused.append(str(error)))
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, f"{live_server.url}/")
    page.wait_for_selector("#site")
    page.goto(f"{live_server.url}{incident.get_absolute_url()}")
    page.wait_for_selector("#player[data-overlay=ready]")
    page.evaluate(ON_SCREEN)
    assert page.evaluate(BAR_SHARES) == pytest.approx([0, 1, 0.25, 0.5], abs=0.01), "the timeline's bars"
    assert json.loads(page.get_attribute("#clip-overlay", "data-boxes")) == [], "no boxes over the poster"

    first = page.evaluate(PLAY_UNTIL, 2.0)
    shot(page, "playback-1-first-sample.png")
    assert_square_boxed(first)
    assert {b["track"] for b in first["boxes"]} == {"4", "12"}, "the parked van's event holds from 2 s to 4 s"

    second = page.evaluate(PLAY_UNTIL, 3.6)
    shot(page, "playback-2-second-sample.png")
    assert_square_boxed(second)
    moved = drawn(second, "4")[0] - drawn(first, "4")[0]
    seconds = second["time"] - first["time"]
    assert moved == pytest.approx(0.15 * seconds * second["element"][0], abs=2), "moves as the event's boxes do"
    assert moved > 50

    page.wait_for_timeout(600)  # paused: the overlay stays, unchanged
    assert page.evaluate("window.onScreen()")["boxes"] == second["boxes"]
    assert page.get_attribute("#timeline li:first-child", "class") == "seekable live"

    # Letterboxed: a box 480 px high shows the 640 x 360 picture between 60 px bars.
    page.evaluate(LETTERBOX)
    page.wait_for_function("() => document.getElementById('clip-overlay').clientHeight === 480")
    boxed = page.evaluate("window.onScreen()")
    shot(page, "playback-3-letterboxed.png")
    assert boxed["canvas"] == [0, 0, 640, 480], "the canvas covers the element"
    box = normalized(drawn(boxed, "4"), 0, 60, 640, 360)
    assert box == pytest.approx(expected_box(boxed["time"]), abs=0.005)

    # The timeline seeks: the van's row plays from its first second.
    page.click("#timeline li:nth-child(2)")
    page.wait_for_function("() => Math.abs(document.getElementById('clip-video').currentTime - 2.0) < 0.01")
    page.wait_for_function("() => document.getElementById('clip-overlay').dataset.time === '2.000'")
    seeked = page.evaluate("window.onScreen()")
    assert normalized(drawn(seeked, "12"), 0, 60, 640, 360) == pytest.approx(VAN, abs=0.005)
    page.screenshot(path=str(ARTIFACTS / "playback-4-page.png"), full_page=True)

    with page.expect_download() as download:  # the export button: the clip and the record, zipped
        page.click("#export")
    archive = zipfile.ZipFile(download.value.path())
    assert archive.namelist() == [f"incident-{incident.pk}.json", f"incident-{incident.pk}.mp4"]
    assert len(json.loads(archive.read(f"incident-{incident.pk}.json"))["events"][0]["boxes"]) == 9

    page.fill("#note", "checking the yard camera")
    page.click("button:has-text('Acknowledge')")
    page.wait_for_function("() => document.getElementById('status').textContent.trim() === 'Acknowledged'")
    page.fill("#note", "a driver fetching the van")
    page.click("button:has-text('Resolve')")
    page.wait_for_function("() => document.getElementById('status').textContent.trim() === 'Resolved'")
    assert "a driver fetching the van" in page.inner_text("pre.notes")
    page.screenshot(path=str(ARTIFACTS / "playback-5-resolved.png"), full_page=True)
    assert refused == []

    def stored() -> tuple[str, str, list[str]]:
        row = Incident.objects.get(pk=incident.pk)
        entries = AuditLog.objects.filter(target_type="Incident", target_id=str(incident.pk)).order_by("at")
        trail = list(entries.values_list("action", flat=True))
        connection.close()
        return row.status, row.notes, trail

    with ThreadPoolExecutor(max_workers=1) as pool:  # the ORM refuses Playwright's event-loop thread
        status, notes, actions = pool.submit(stored).result()
    assert status == "resolved"
    assert "guard: checking the yard camera" in notes and "guard: a driver fetching the van" in notes
    assert actions == ["incident.export", "incident.acknowledge", "incident.resolve"]
