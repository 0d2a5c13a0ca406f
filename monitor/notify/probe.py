"""“Send test”: one synthetic incident through a channel's transport, right now, no outbox row.

The result is returned (for the admin's message) and kept in the audit log by the service verb
(services.send_test_notification), which is the channel's delivery log for tests.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from monitor.models import Delivery, NotificationChannel
from monitor.notify import TransportError, transport_for
from monitor.notify.payload import synthetic_incident


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    error: str
    latency_ms: int
    message_id: str

    def as_details(self) -> dict[str, Any]:
        return asdict(self)


def send_test(channel: NotificationChannel) -> ProbeResult:
    delivery = Delivery(channel=channel, incident=synthetic_incident(channel))  # never saved
    started = time.monotonic()
    try:
        transport_for(channel.kind).notify(delivery.incident, delivery)
        error = ""
    except TransportError as exc:
        error = str(exc)
    latency_ms = round((time.monotonic() - started) * 1000)
    return ProbeResult(ok=not error, error=error, latency_ms=latency_ms, message_id=delivery.message_id)
