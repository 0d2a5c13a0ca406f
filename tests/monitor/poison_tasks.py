"""Tasks for the redelivery test, loaded by a real worker with `--include`."""

from __future__ import annotations

import os
import signal

import redis
from django.conf import settings

from monitor.celery import BoundedDeliveryTask, app


class RecordingTask(BoundedDeliveryTask):
    def on_gave_up(self, args: tuple, kwargs: dict) -> None:
        redis.Redis.from_url(settings.REDIS_URL).set(f"{args[0]}:gave-up", 1)


@app.task(base=RecordingTask, name="tests.kill_my_worker")
def kill_my_worker(key: str) -> None:
    """Counts its runs, then dies the way an OOM-killed decoder would."""
    redis.Redis.from_url(settings.REDIS_URL).incr(f"{key}:runs")
    os.kill(os.getpid(), signal.SIGKILL)
