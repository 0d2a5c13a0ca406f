"""Celery tasks of the domain (housekeeping); camera work lives in detection/tasks.py."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from monitor import retention
from monitor.notify import relay

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def apply_retention() -> dict[str, int]:
    """Beat: remove expired evidence and enforce media budgets. Idempotent, so a re-delivery is harmless."""
    summary = retention.apply_retention().summary()
    log.info("retention: %s", summary)
    return summary


@shared_task(ignore_result=True)
def relay_notifications() -> dict[str, int]:
    """Beat: drain the notification outbox. Safe beside other passes and `manage.py relay_notifications`:
    rows are claimed with SKIP LOCKED. Bounded, so a backlog is shared with the next passes."""
    report = relay.run_once(max_seconds=settings.ARGUS_RELAY_PASS_SECONDS)
    if report.processed:
        log.info("notifications: %s", report)
    return {"delivered": report.delivered, "retrying": report.retrying, "dead": report.dead}
