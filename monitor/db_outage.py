"""Riding out a database outage in a worker: retry, holding our place, instead of dropping work.

A worker that loses Postgres mid-video waits (with backoff) and carries on from the same frame once
the database answers again; only an outage longer than ARGUS_DB_OUTAGE_TOLERANCE_SECONDS gives up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

DATABASE_DOWN = (OperationalError, InterfaceError)


def through_outage(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)`, retried while the database is unreachable, up to the tolerance."""
    deadline = time.monotonic() + settings.ARGUS_DB_OUTAGE_TOLERANCE_SECONDS
    delay, since = 0.25, None
    while True:
        try:
            result = fn(*args, **kwargs)
        except DATABASE_DOWN as exc:
            if time.monotonic() >= deadline:
                raise
            if since is None:
                since = time.monotonic()
                log.warning("database unreachable in %s (%s); waiting for it", fn.__name__, str(exc).strip())
            connections.close_all()  # a broken connection is never reused: the next try opens one
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        if since is not None:
            log.warning("database back after %.1f s; %s carried on", time.monotonic() - since, fn.__name__)
        return result
