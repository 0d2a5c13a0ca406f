"""WebSocket consumers: one per site, pushing live activity, camera health and incidents."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from dashboard.access import require_site
from monitor.live import site_group


class SiteConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        site_id = int(self.scope["url_route"]["kwargs"]["site_id"])
        try:
            await database_sync_to_async(require_site)(user, site_id)
        except Http404:
            await self.close(code=4403)
            return
        self.group = site_group(site_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _forward(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    # Handlers are named after the event types in monitor/live.py.
    async def camera_activity(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def camera_health(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def incident_opened(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def incident_updated(self, event: dict[str, Any]) -> None:
        await self._forward(event)
