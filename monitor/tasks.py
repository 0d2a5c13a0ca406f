"""Celery tasks of the domain (housekeeping); camera work lives in detection/tasks.py."""

from __future__ import annotations

import logging

from celery import shared_task

from monitor import retention

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def apply_retention() -> dict[str, int]:
    """Beat: remove expired evidence and enforce media budgets. Idempotent, so a re-delivery is harmless."""
    summary = retention.apply_retention().summary()
    log.info("retention: %s", summary)
    return summary
