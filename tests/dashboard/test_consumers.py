"""The site WebSocket: members join their site's group and receive its pushes; others are refused."""

from __future__ import annotations

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connections

from monitor.asgi import application
from monitor.live import site_group
from monitor.models import Site

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    """Consumers query from a worker thread; close its connection so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


def communicator(user: User | None, site: Site) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, f"/ws/sites/{site.pk}/", headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")]
    )
    if user is not None:
        comm.scope["user"] = user
    return comm


async def test_a_member_receives_pushes_for_their_site(viewer: User, site: Site) -> None:
    comm = communicator(viewer, site)
    connected, _ = await comm.connect()
    assert connected
    event = {"type": "incident.opened", "incident_id": 7, "title": "Person at the gate"}
    await get_channel_layer().group_send(site_group(site.pk), event)
    assert await comm.receive_json_from(timeout=5) == event
    await comm.disconnect()


async def test_an_outsider_is_refused(outsider: User, site: Site) -> None:
    comm = communicator(outsider, site)
    connected, code = await comm.connect()
    await comm.disconnect()  # as Daphne does: ends the refused consumer's channel-layer receive
    assert not connected and code == 4403


async def test_an_anonymous_visitor_is_refused(site: Site) -> None:
    comm = communicator(None, site)
    connected, _ = await comm.connect()
    await comm.disconnect()
    assert not connected


async def test_a_foreign_origin_is_refused(viewer: User, site: Site) -> None:
    comm = WebsocketCommunicator(
        application, f"/ws/sites/{site.pk}/", headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")]
    )
    comm.scope["user"] = viewer
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()  # as Daphne does; else the refused consumer's pending Redis read stalls the teardown
