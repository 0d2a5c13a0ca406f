"""Cross-site WebSocket hijacking guard: a socket must be opened by a page of this very site.

Channels' AllowedHostsOriginValidator checks only the Origin's host name against ALLOWED_HOSTS, so a
page on another port of the same host (another web app there) could open a socket with the user's
cookies. This applies the rule Django's CSRF check applies to forms: the Origin is the host the
socket was opened on, port included, or one of CSRF_TRUSTED_ORIGINS.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_and_port(scheme: str, netloc: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        return (parts.hostname or "", parts.port or DEFAULT_PORTS.get(scheme))
    except ValueError:  # a malformed port
        return None


def same_origin(headers: dict[bytes, bytes]) -> bool:
    origin = headers.get(b"origin", b"").decode("latin1").strip()
    host = headers.get(b"host", b"").decode("latin1").strip()
    if not origin or not host:  # browsers send both; a socket without them is no page of ours
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    scheme, _, netloc = origin.partition("://")
    if scheme not in DEFAULT_PORTS:
        return False
    theirs = _host_and_port(scheme, netloc)
    return theirs is not None and theirs == _host_and_port(scheme, host)


class SameOriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not same_origin(dict(scope.get("headers", []))):
            return await WebsocketDenier.as_asgi()(scope, receive, send)
        return await self.application(scope, receive, send)
