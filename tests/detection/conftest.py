"""Fixtures for camera-worker tests: small ingestion timings and a detector that only counts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from django.db import connection

from detection import tasks
from detection.types import Detection


class CountingDetector:
    """Finds nobody, and remembers when each frame reached analysis (cheap on a shared machine;
    real detection on real footage is shown by test_camera_task's first test)."""

    name = "counting"

    def __init__(self) -> None:
        self.seen: list[float] = []

    def detect(self, image: np.ndarray) -> list[Detection]:
        self.seen.append(time.monotonic())
        return []

    def frames_since(self, moment: float) -> int:
        return sum(t >= moment for t in self.seen)


@pytest.fixture
def counting_detector() -> Iterator[CountingDetector]:
    detector = CountingDetector()
    with mock.patch.object(tasks, "worker_detector", return_value=detector):
        yield detector


@pytest.fixture
def fast_ingestion(settings) -> None:
    """Timings small enough for a test to see a whole outage in seconds (production: 30/300/10/3)."""
    settings.ARGUS_CAMERA_LEASE_SECONDS = 9  # opens and reads give up within a third of it: 3 s
    settings.ARGUS_CAMERA_SLICE_SECONDS = 120
    settings.ARGUS_SOURCE_OPEN_TIMEOUT_SECONDS = 3.0
    settings.ARGUS_CAMERA_RECONNECT_MAX_SECONDS = 3.0
    settings.ARGUS_RTSP_TRANSPORT = "tcp"


class Worker:
    """A camera task running in a thread, as a Celery worker would run it, so the test can act
    on the camera's servers meanwhile."""

    def __init__(self, run: Callable[[], str]) -> None:
        self.outcome: str | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, args=(run,), daemon=True)
        self.started = time.monotonic()
        self.thread.start()

    def _main(self, run: Callable[[], str]) -> None:
        try:
            self.outcome = run()
        except BaseException as exc:  # surfaced by join()
            self.error = exc
        finally:
            connection.close()  # this thread's own database connection

    def join(self, timeout_s: float) -> str:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), f"the camera task did not return within {timeout_s} s"
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


@pytest.fixture
def start_worker() -> Callable[[int], Worker]:
    def start(camera_id: int) -> Worker:
        return Worker(lambda: tasks.analyse_camera.apply(args=[camera_id]).get())

    return start


@pytest.fixture
def pushes() -> Iterator[mock.Mock]:
    """Live pushes, captured instead of sent (the worker's activity pushes included)."""
    with mock.patch("monitor.live.publish_now") as publish, mock.patch.object(tasks, "publish_now", publish):
        yield publish


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
