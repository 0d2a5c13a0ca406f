"""The Celery app.

Why these settings (see settings.py for the values):
- acks_late + reject_on_worker_lost: a task whose worker is killed goes back to the queue and
  runs again on another worker; tasks are written to be idempotent (camera leases, event keys).
- max deliveries: a task that keeps killing its worker is given up instead of looping forever.
- the Django task class gives `delay_on_commit`, so nothing is enqueued for rows not yet committed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.contrib.django.task import DjangoTask

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monitor.settings")

log = logging.getLogger(__name__)

app = Celery("argus", task_cls="monitor.celery:BoundedDeliveryTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["detection", "monitor"])


def _delivery_counter_key(task_id: str) -> str:
    return f"argus:task-deliveries:{task_id}"


def count_delivery(task_id: str) -> int:
    """Count how often this task id was handed to a worker; the count survives worker deaths."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    key = _delivery_counter_key(task_id)
    with client.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, 7 * 24 * 3600)
        count, _ = pipe.execute()
    return int(count)


class BoundedDeliveryTask(DjangoTask):
    """Refuses to run a task id that was already delivered `max_deliveries` times."""

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        task_id = self.request.id
        if task_id and not self.request.is_eager:
            from django.conf import settings

            limit = settings.ARGUS_TASK_MAX_DELIVERIES
            deliveries = count_delivery(task_id)
            if deliveries > limit:
                log.error("task %s[%s] delivered %d times; giving up", self.name, task_id, deliveries)
                self.on_gave_up(args, kwargs)
                return None
        return super().__call__(*args, **kwargs)

    def on_gave_up(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Hook for tasks to record that they were given up (e.g. mark a clip failed)."""


__all__ = ["BoundedDeliveryTask", "app"]
