"""Webhook transport: a signed JSON POST (Standard Webhooks), through the SSRF-guarded client.

How answers are read (README, "Notifications"):
- 2xx: delivered. Nothing else is success, and redirects are never followed: a 3xx is a failure,
  retried (it may be a maintenance redirect) with the Location in the error, so the admin sees it.
- 410 Gone: the receiver retired the endpoint; the channel is disabled.
- 408, 425, 429, 5xx, timeouts, refused connections: retried; 429 and 503 honour Retry-After.
- other 4xx: permanent; the receiver refuses this request as such and would refuse it again.
- a target that resolves to a forbidden address: permanent (a policy refusal, no packet was sent).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import urllib3
from django.conf import settings
from django.utils import timezone

from monitor.models import Delivery, Incident
from monitor.notify import safehttp
from monitor.notify.base import ChannelGone, TransportError
from monitor.notify.payload import incident_payload
from monitor.notify.signing import signature_header

RETRYABLE_4XX = {408, 425, 429}
HONOURS_RETRY_AFTER = {429, 503}
MAX_RETRY_AFTER_S = 24 * 3600.0


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER_S)


def encode(incident: Incident) -> bytes:
    return json.dumps(incident_payload(incident), separators=(",", ":"), sort_keys=True).encode()


def signed_headers(msg_id: str, body: bytes, secrets: list[str], timestamp: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "Argus-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(msg_id, timestamp, body, secrets),
    }


def check_answer(response: safehttp.Response) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    excerpt = response.body[:200].decode("utf-8", "replace").strip()
    message = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    if status == 410:
        raise ChannelGone(f"{message} (the receiver retired this endpoint; channel disabled)")
    if 300 <= status < 400:
        raise TransportError(f"HTTP {status} redirect to {response.headers.get('location', '?')} not followed")
    retry_after = retry_after_seconds(response.headers.get("retry-after"), timezone.now())
    if status in HONOURS_RETRY_AFTER:
        raise TransportError(message, retry_after=retry_after)
    raise TransportError(message, permanent=400 <= status < 500 and status not in RETRYABLE_4XX)


class WebhookTransport:
    def notify(self, incident: Incident, delivery: Delivery) -> None:
        body = encode(incident)
        headers = signed_headers(delivery.message_id, body, delivery.channel.secrets, int(time.time()))
        try:
            response = safehttp.post(
                delivery.channel.target,
                body,
                headers,
                connect_s=settings.ARGUS_WEBHOOK_CONNECT_TIMEOUT_SECONDS,
                read_s=settings.ARGUS_WEBHOOK_READ_TIMEOUT_SECONDS,
                allow_private=settings.ARGUS_WEBHOOK_ALLOW_PRIVATE,
            )
        except (safehttp.BlockedAddress, ValueError) as exc:
            raise TransportError(f"refused: {exc}", permanent=True) from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise TransportError(f"timed out: {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransportError(f"connection failed: {exc}") from exc
        check_answer(response)
