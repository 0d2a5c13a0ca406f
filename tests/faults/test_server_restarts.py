"""Redis restarted and Postgres stopped for 30 s while real workers analyse real clips and an
operator's browser watches the live wall: nothing is lost, the web answers 503 (never a
traceback) while the database is away, and everything resumes by itself.

Private servers (tests/faults/stack.py): stopping them disturbs nothing else on this machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from monitor import video_jobs
from monitor.models import AlertRule, Camera, Event, Incident, Membership, Role, Site, VideoJob, Zone
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, free_port
from tests.conftest import REPO, WHOLE_FRAME
from tests.faults.conftest import REQUEUE_S, WorkerPool, fight_clips, wait_for
from tests.faults.stack import Stack
from tests.faults.test_worker_kills import ANALYSIS_FPS, expected_keys, stored_keys

pytestmark = pytest.mark.slow

PASSWORD = "a-long-test-password-1"
CLIPS = 40
OUTAGE_S = 30


@pytest.fixture
def watched_site(transactional_db: None) -> Camera:
    site = Site.objects.create(name="Depot")
    camera = Camera.objects.create(site=site, name="Yard", stream_url="/dev/null", enabled=False)
    zone = Zone.objects.create(camera=camera, name="Everywhere", points=WHOLE_FRAME)
    AlertRule.objects.create(
        site=site, zone=zone, name="Person seen", min_duration_s=0.3, min_confidence=0.3, cooldown_s=5
    )
    user = User.objects.create_user("guard", password=PASSWORD)
    Membership.objects.create(user=user, site=site, role=Role.OPERATOR)
    return camera


@pytest.fixture
def web(pool: WorkerPool, tmp_path: Path) -> Iterator[str]:
    """Daphne, as in production, on the private servers."""
    port = free_port()
    log = tmp_path / "daphne.log"
    daphne = str(Path(sys.executable).parent / "daphne")
    proc = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "monitor.asgi:application"],
        cwd=REPO,
        env={**pool.env, "SECURE_COOKIES": "0"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: status_of(url + "login/") == 200, 60, "Daphne to answer")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        print(f"--- daphne log tail\n{log.read_text(errors='replace')[-1500:]}")


def status_of(url: str, accept: str = "text/html", session: str = "") -> int | None:
    headers = {"Accept": accept} | ({"Cookie": f"sessionid={session}"} if session else {})
    request = urllib.request.Request(url, headers=headers)  # noqa: S310  (our loopback server)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  (our loopback server)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed to show that browsers reconnect (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium.new_page(viewport={"width": 1280, "height": 860})
        finally:
            chromium.close()


def in_thread(fn: Any, *args: Any) -> Any:
    """Django refuses queries in the thread where Playwright's sync API runs its event loop."""

    def run() -> Any:
        try:
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def login(page: Any, url: str) -> None:
    page.goto(url)
    page.fill("#id_username", "guard")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#conn.ok", timeout=30_000)


class Beat(threading.Thread):
    """Beat's video-job sweep, every second, in its own thread (and its own database connection)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.failures = 0

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                video_jobs.sweep()
            except Exception:  # the database may be away: beat logs and tries again next tick
                self.failures += 1
                connection.close()
        connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def queue(camera: Camera, clips: list[Path], hour0: int) -> list[int]:
    base = datetime(2026, 10, 1, tzinfo=UTC)
    return [
        video_jobs.create_video_job(
            camera.pk, str(p), recorded_at=base + timedelta(hours=hour0 + i), analysis_fps=ANALYSIS_FPS
        ).pk
        for i, p in enumerate(clips)
    ]


def finished(job_ids: list[int]) -> int:
    return VideoJob.objects.filter(pk__in=job_ids, status__in=["done", "failed"]).count()


def assert_nothing_lost(job_ids: list[int]) -> dict[str, int]:
    failed = list(VideoJob.objects.filter(pk__in=job_ids, status="failed").values_list("pk", "error"))
    assert not failed, f"jobs failed: {failed}"
    lost = doubled = expected_total = 0
    for job in VideoJob.objects.filter(pk__in=job_ids).select_related("camera"):
        stored, expected = stored_keys(job), expected_keys(job)
        lost += len(expected - set(stored))
        doubled += len(stored) - len(set(stored))
        expected_total += len(expected)
    unlinked = Event.objects.filter(incident__isnull=True).count()
    figures = {"expected_events": expected_total, "lost": lost, "doubled": doubled, "unlinked": unlinked}
    assert expected_total > 0 and lost == doubled == unlinked == 0, figures
    return figures


def test_redis_restarted_mid_run_loses_nothing_and_browsers_reconnect(
    pool: WorkerPool, private_stack: Stack, watched_site: Camera, web: str, browser: Any
) -> None:
    pool.start()
    pool.start()
    login(browser, web)
    beat = Beat()
    beat.start()
    try:
        job_ids = in_thread(queue, watched_site, fight_clips(CLIPS), 0)
        in_thread(wait_for, lambda: finished(job_ids) >= 8, 120, "the first clips", pool)
        before = in_thread(lambda: set(Incident.objects.values_list("pk", flat=True)))

        private_stack.stop_redis()  # every queued task and channel message is gone with it
        down_at = time.monotonic()
        browser.wait_for_selector("#conn:not(.ok)", timeout=30_000)
        time.sleep(3)
        private_stack.start_redis()
        browser.wait_for_selector("#conn.ok", timeout=60_000)
        reconnected_s = time.monotonic() - down_at

        in_thread(wait_for, lambda: finished(job_ids) == CLIPS, 240, "every clip after the restart", pool)
        all_done_s = time.monotonic() - down_at
        new = in_thread(lambda: set(Incident.objects.values_list("pk", flat=True)) - before)
        assert new, "clips analysed after the restart opened incidents"
        # Alerts pushed after the restart reach the reconnected browser without a reload.
        browser.wait_for_selector(
            ",".join(f".alert[data-incident-id='{pk}']" for pk in sorted(new)[:20]), timeout=30_000
        )
        figures = in_thread(assert_nothing_lost, job_ids)
    finally:
        beat.stop()
    report = {
        "clips": CLIPS,
        "browser_reconnected_s": round(reconnected_s, 1),
        "all_done_after_s": round(all_done_s, 1),
    }
    print("redis restart:", json.dumps(report | figures))
    assert pool.alive() and len(pool.alive()) == 2, "the workers rode the restart out\n" + pool.tails()


def test_postgres_stopped_for_30_s_answers_503_and_resumes_without_loss(
    pool: WorkerPool, private_stack: Stack, watched_site: Camera, web: str, settings
) -> None:
    pool.start()
    pool.start()
    beat = Beat()
    beat.start()
    try:
        client = Client()
        assert client.login(username="guard", password=PASSWORD)
        session = client.cookies["sessionid"].value

        def answers() -> dict[str, int | None]:
            """The operator's wall and the API, as the logged-in operator asks for them."""
            return {
                "page": status_of(web, session=session),
                "api": status_of(web + "api/v1/incidents/", "application/json", session),
            }

        assert answers() == {"page": 200, "api": 200}
        job_ids = queue(watched_site, fight_clips(CLIPS), 100)
        wait_for(lambda: finished(job_ids) >= 8, 120, "the first clips", pool)
        connection.close()

        private_stack.stop_postgres()
        down_at = time.monotonic()
        first = answers()
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        last = answers()
        private_stack.start_postgres()
        back_at = time.monotonic()
        wait_for(lambda: answers() == {"page": 200, "api": 200}, 30, "the web to answer again after the outage")
        web_back_s = time.monotonic() - back_at

        wait_for(lambda: finished(job_ids) == CLIPS, 240, "every clip after the outage", pool)
        all_done_s = time.monotonic() - back_at
        figures = assert_nothing_lost(job_ids)
        runs = sum(VideoJob.objects.filter(pk__in=job_ids).values_list("attempts", flat=True))
    finally:
        beat.stop()
    report = {
        "clips": CLIPS,
        "outage_s": OUTAGE_S,
        "web_during_outage": [first, last],
        "web_back_after_s": round(web_back_s, 1),
        "all_done_after_s": round(all_done_s, 1),
        "runs": runs,
        "requeue_s": REQUEUE_S,
    }
    print("postgres outage:", json.dumps(report | figures))
    assert first == last == {"page": 503, "api": 503}, report
    assert len(pool.alive()) == 2, "the workers waited the outage out\n" + pool.tails()
    assert runs == CLIPS, "workers held their place: no clip had to start again"
