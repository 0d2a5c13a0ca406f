"""Notifications: transports (one module each), the registry kind -> transport, and the relay
(relay.py) that drains the Delivery outbox. See README, "Notifications"."""

from __future__ import annotations

from monitor.notify.base import ChannelGone, Transport, TransportError
from monitor.notify.email import EmailTransport
from monitor.notify.webhook import WebhookTransport

TRANSPORTS: dict[str, type[Transport]] = {"email": EmailTransport, "webhook": WebhookTransport}


def transport_for(kind: str) -> Transport:
    try:
        return TRANSPORTS[kind]()
    except KeyError:
        raise TransportError(f"no transport for channel kind {kind!r}", permanent=True) from None


__all__ = ["TRANSPORTS", "ChannelGone", "Transport", "TransportError", "transport_for"]
