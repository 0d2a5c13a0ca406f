"""The contract every transport keeps: `notify(incident, delivery)` returns, or raises TransportError."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from monitor.models import Delivery, Incident


class TransportError(Exception):
    """A failed send. `permanent`: retrying the same message cannot succeed (dead-letter it now).
    `retry_after`: seconds the receiver asked us to wait (Retry-After), used instead of the backoff."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class ChannelGone(TransportError):
    """The receiver says this endpoint will never accept anything again (HTTP 410): disable the channel."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class Transport(Protocol):
    def notify(self, incident: Incident, delivery: Delivery) -> None: ...
