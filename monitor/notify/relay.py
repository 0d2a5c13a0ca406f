"""The outbox relay: turns Delivery rows into sent emails and webhooks, at least once.

Each row goes through three short transactions, none of them open while the network is used:
1. claim: SELECT ... FOR UPDATE SKIP LOCKED one due row, mark it SENDING with a claim token, count
   the attempt, and push next_attempt_at one lease ahead (its visibility time). Concurrent relays
   skip each other's locked rows. (SQLite has no row locks; its IMMEDIATE transactions take the
   write lock at BEGIN, so claims are serialized there instead.)
2. send, outside any transaction.
3. record the result, only if our claim token is still on the row.

A relay killed anywhere loses nothing: a row claimed but never recorded becomes due again when its
lease lapses, and is sent again with the same stable id (webhook-id, Message-ID), so receivers can
deduplicate. Failures back off exponentially with jitter; after ARGUS_NOTIFY_GIVE_UP_HOURS, a
permanent error, or a 410 the row is dead-lettered (status dead, the last error kept).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from monitor.models import Delivery, NotificationChannel
from monitor.notify import ChannelGone, TransportError, transport_for
from monitor.services import audit, retry_delay_s

log = logging.getLogger(__name__)

ERROR_CHARS = 2000


@dataclass
class RelayReport:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    lost_claims: int = 0  # our lease lapsed and another relay took the row over meanwhile

    @property
    def processed(self) -> int:
        return self.delivered + self.retrying + self.dead + self.lost_claims


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    token: str


def _now(now: datetime | None) -> datetime:
    """The clock seam: tests pass a time; the relay reads the clock at each step."""
    return now or timezone.now()


def _due(now: datetime) -> Q:
    # SENDING is due too: its next_attempt_at is the end of its lease, so a crashed claim comes back.
    waiting = [Delivery.Status.PENDING, Delivery.Status.FAILED, Delivery.Status.SENDING]
    return Q(status__in=waiting, next_attempt_at__lte=now)


def claim_next(now: datetime | None = None) -> Claim | None:
    now = _now(now)
    token = uuid.uuid4().hex
    with transaction.atomic():
        rows = Delivery.objects.select_for_update(skip_locked=True).filter(_due(now))
        delivery_id = rows.order_by("next_attempt_at", "pk").values_list("pk", flat=True).first()
        if delivery_id is None:
            return None
        Delivery.objects.filter(pk=delivery_id).update(
            status=Delivery.Status.SENDING,
            claim_token=token,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            next_attempt_at=now + timedelta(seconds=settings.ARGUS_NOTIFY_LEASE_SECONDS),
        )
    return Claim(delivery_id, token)


def _send(delivery: Delivery) -> tuple[TransportError | None, int]:
    """Send one delivery; returns the error (None when delivered) and the latency in ms."""
    started = time.monotonic()
    error: TransportError | None = None
    if not delivery.channel.enabled:
        error = TransportError("the channel is disabled", permanent=True)
    else:
        try:
            transport_for(delivery.channel.kind).notify(delivery.incident, delivery)
        except TransportError as exc:
            error = exc
        except Exception as exc:  # a transport bug must cost one row a retry, not stop the relay
            log.exception("delivery %s: transport crashed", delivery.pk)
            error = TransportError(f"internal error: {exc!r}")
    return error, round((time.monotonic() - started) * 1000)


def _load(claim: Claim) -> Delivery | None:
    related = ("channel__site", "incident__camera", "incident__site", "incident__rule")
    return Delivery.objects.select_related(*related).filter(pk=claim.delivery_id, claim_token=claim.token).first()


def deliver(claim: Claim, now: datetime | None = None) -> str:
    """Send a claimed row and record the outcome; returns the row's new status ("lost" if the claim lapsed)."""
    delivery = _load(claim)
    if delivery is None:
        return "lost"
    error, latency_ms = _send(delivery)
    with transaction.atomic():
        return _record(delivery, claim, error, latency_ms, _now(now))


def _record(delivery: Delivery, claim: Claim, error: TransportError | None, latency_ms: int, now: datetime) -> str:
    fields: dict[str, object] = {"claim_token": "", "last_latency_ms": latency_ms}
    if error is None:
        fields.update(status=Delivery.Status.DELIVERED, delivered_at=now, last_error="")
    else:
        fields.update(_failure(delivery, error, now))
    mine = Delivery.objects.filter(pk=delivery.pk, claim_token=claim.token, status=Delivery.Status.SENDING)
    if not mine.update(**fields):
        log.warning("delivery %s: lease lapsed while sending; the relay that took it over records it", delivery.pk)
        return "lost"
    if isinstance(error, ChannelGone):
        disable_channel(delivery.channel, str(error))
    return str(fields["status"])


def _failure(delivery: Delivery, error: TransportError, now: datetime) -> dict[str, object]:
    message = str(error)[:ERROR_CHARS]
    if error.permanent:
        return {"status": Delivery.Status.DEAD, "last_error": message}
    delay = error.retry_after
    if delay is None:
        delay = retry_delay_s(
            delivery.attempts,
            cap_s=settings.ARGUS_NOTIFY_RETRY_MAX_SECONDS,
            base_s=settings.ARGUS_NOTIFY_RETRY_BASE_SECONDS,
        )
    next_attempt = now + timedelta(seconds=delay)
    if next_attempt > delivery.created_at + timedelta(hours=settings.ARGUS_NOTIFY_GIVE_UP_HOURS):
        given_up = f"gave up after {delivery.attempts} attempts: {message}"[:ERROR_CHARS]
        return {"status": Delivery.Status.DEAD, "last_error": given_up}
    return {"status": Delivery.Status.FAILED, "last_error": message, "next_attempt_at": next_attempt}


def disable_channel(channel: NotificationChannel, reason: str) -> None:
    """Turn a channel off (a 410 from its receiver) and say so in the audit log, once."""
    if NotificationChannel.objects.filter(pk=channel.pk, enabled=True).update(enabled=False):
        log.warning("channel %s disabled: %s", channel.pk, reason)
        audit(None, channel.site, "channel.disabled", channel, reason=reason)


def run_once(
    now: datetime | None = None, *, max_seconds: float | None = None, stop: threading.Event | None = None
) -> RelayReport:
    """Deliver due rows until none is left, `max_seconds` have passed, or `stop` is set."""
    report = RelayReport()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    while not (stop and stop.is_set()) and (deadline is None or time.monotonic() < deadline):
        claim = claim_next(now)
        if claim is None:
            break
        outcome = deliver(claim, now)
        _count(report, outcome)
    return report


def _count(report: RelayReport, outcome: str) -> None:
    if outcome == Delivery.Status.DELIVERED:
        report.delivered += 1
    elif outcome == Delivery.Status.FAILED:
        report.retrying += 1
    elif outcome == Delivery.Status.DEAD:
        report.dead += 1
    else:
        report.lost_claims += 1
