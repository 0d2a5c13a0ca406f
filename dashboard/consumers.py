"""WebSocket consumers: one per site, pushing live activity, camera health and incidents."""

from __future__ import annotations

import asyncio
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest

from dashboard.access import require_site
from monitor.live import site_group, user_group

REFUSED = 4403  # not a member of the site (or not signed in)
SIGNED_OUT = 4401  # signed out, disabled or removed from the site since the socket opened


def current_user(scope: dict[str, Any]) -> Any:
    """Who the socket belongs to now, re-read as a request would: its session may have been logged
    out or deleted, its user disabled or its password changed since it connected."""
    session_key = getattr(scope.get("session"), "session_key", None)
    if session_key:
        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        return get_user(request)
    user: Any = scope.get("user")  # put there without a session (another auth middleware): re-read the row
    if not getattr(user, "is_authenticated", False):
        return None
    return User.objects.filter(pk=user.pk, is_active=True).first()


def still_allowed(scope: dict[str, Any], site_id: int) -> bool:
    try:
        require_site(current_user(scope), site_id)
    except Http404:
        return False
    return True


class SiteConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    own_group: str | None = None
    watcher: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        site_id = int(self.scope["url_route"]["kwargs"]["site_id"])
        try:
            await database_sync_to_async(require_site)(user, site_id)
        except Http404:
            await self.close(code=REFUSED)
            return
        self.group, self.own_group = site_group(site_id), user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.own_group, self.channel_name)
        await self.accept()
        self.watcher = asyncio.create_task(self._recheck(site_id))

    async def disconnect(self, code: int) -> None:
        if self.watcher:
            self.watcher.cancel()
        for group in (self.group, self.own_group):
            if group:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def _recheck(self, site_id: int) -> None:
        """Close the socket once its user may no longer see the site, whatever changed and however."""
        while True:
            await asyncio.sleep(settings.ARGUS_WS_RECHECK_SECONDS)
            if not await database_sync_to_async(still_allowed)(self.scope, site_id):
                await self.close(code=SIGNED_OUT)
                return

    async def _forward(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    # Handlers are named after the event types in monitor/live.py.
    async def account_disabled(self, event: dict[str, Any]) -> None:
        await self.close(code=SIGNED_OUT)

    async def camera_activity(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def camera_health(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def incident_opened(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def incident_updated(self, event: dict[str, Any]) -> None:
        await self._forward(event)
