"""The Celery app survives killed workers and gives up on a task that keeps killing them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings

from monitor.celery import app, count_delivery

REPO = Path(__file__).resolve().parents[2]


def test_tasks_are_acked_late_and_requeued_when_their_worker_is_lost() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options["visibility_timeout"] > settings.ARGUS_CAMERA_SLICE_SECONDS


def test_deliveries_are_counted_per_task_id_in_redis() -> None:
    task_id = f"test-{uuid.uuid4()}"
    assert [count_delivery(task_id) for _ in range(3)] == [1, 2, 3]


@pytest.mark.slow
def test_a_task_that_keeps_killing_its_worker_is_given_up(tmp_path: Path) -> None:
    from tests.monitor.poison_tasks import kill_my_worker

    client = redis.Redis.from_url(settings.REDIS_URL)
    queue, key = f"poison-{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "monitor", "worker", "--include", "tests.monitor.poison_tasks"]
        + ["-Q", queue, "--concurrency", "1", "-n", f"{queue}@%h", "--without-heartbeat", "--without-gossip"]
        + ["--without-mingle", "-l", "WARNING"],
        cwd=REPO,
        env=env,
        stdout=(tmp_path / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        kill_my_worker.apply_async(args=[key], queue=queue)
        deadline = time.monotonic() + 90
        while not client.get(f"{key}:gave-up") and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(0.2)
        runs = int(client.get(f"{key}:runs") or 0)
        assert client.get(f"{key}:gave-up"), f"never given up after {runs} runs"
        assert runs == settings.ARGUS_TASK_MAX_DELIVERIES
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
