"""The site WebSocket, through the real cookie and session middleware: only a page of this site,
only a signed-in member; and a socket closes once its user is disabled, signed out or removed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client

from dashboard.consumers import REFUSED, SIGNED_OUT
from monitor.asgi import application
from monitor.models import Membership, Site

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

HOST = b"localhost:8000"
SAME_ORIGIN = b"http://localhost:8000"


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    """Consumers query from a worker thread; close its connection so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


@sync_to_async
def session_of(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def socket(site: Site, session: str | None = None, origin: bytes | None = SAME_ORIGIN) -> WebsocketCommunicator:
    headers = [(b"host", HOST)]
    if origin is not None:
        headers.append((b"origin", origin))
    if session is not None:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, f"/ws/sites/{site.pk}/", headers=headers)


async def opened(site: Site, user: User) -> WebsocketCommunicator:
    comm = socket(site, await session_of(user))
    connected, _ = await comm.connect()
    assert connected
    return comm


async def refusal(comm: WebsocketCommunicator) -> Any:
    """The close code of a refused socket; the consumer is then told the client left, as Daphne does."""
    connected, code = await comm.connect()
    assert not connected
    await comm.disconnect()
    return code


async def closed_with(comm: WebsocketCommunicator, timeout: float) -> Any:
    message = await comm.receive_output(timeout=timeout)
    assert message["type"] == "websocket.close"
    await comm.disconnect()
    return message.get("code")


async def test_a_member_s_session_cookie_opens_the_socket(viewer: User, site: Site) -> None:
    comm = await opened(site, viewer)
    await comm.disconnect()


@pytest.mark.parametrize(
    "origin",
    [b"http://evil.example", b"http://localhost:9000", b"https://localhost.evil.example:8000", b"null", None],
    ids=["other-site", "other-port-same-host", "look-alike", "opaque", "none"],
)
async def test_a_socket_from_any_other_origin_is_refused_even_with_a_valid_session(
    viewer: User, site: Site, origin: bytes | None
) -> None:
    await refusal(socket(site, await session_of(viewer), origin=origin))


async def test_an_anonymous_visitor_is_refused(site: Site) -> None:
    assert await refusal(socket(site)) == REFUSED


async def test_a_signed_in_non_member_is_refused(outsider: User, site: Site) -> None:
    assert await refusal(socket(site, await session_of(outsider))) == REFUSED


async def test_a_forged_session_id_is_refused(site: Site) -> None:
    assert await refusal(socket(site, "x" * 32)) == REFUSED


async def test_disabling_an_account_closes_its_open_socket_at_once(viewer: User, site: Site) -> None:
    comm = await opened(site, viewer)
    viewer.is_active = False
    await sync_to_async(viewer.save)()
    assert await closed_with(comm, timeout=5) == SIGNED_OUT  # pushed, well before any re-check
    assert not await sync_to_async(Session.objects.exists)()


async def test_a_socket_whose_user_was_disabled_behind_the_signals_back_closes_at_the_next_check(
    viewer: User, site: Site, settings: Any
) -> None:
    settings.ARGUS_WS_RECHECK_SECONDS = 0.5
    comm = await opened(site, viewer)
    await sync_to_async(User.objects.filter(pk=viewer.pk).update)(is_active=False)  # no post_save
    assert await closed_with(comm, timeout=5) == SIGNED_OUT


async def test_logging_out_elsewhere_closes_the_session_s_socket_at_the_next_check(
    viewer: User, site: Site, settings: Any
) -> None:
    settings.ARGUS_WS_RECHECK_SECONDS = 0.5
    comm = await opened(site, viewer)
    await sync_to_async(Session.objects.all().delete)()  # what logout does to the session
    assert await closed_with(comm, timeout=5) == SIGNED_OUT


async def test_removing_a_member_closes_their_socket_at_the_next_check(viewer: User, site: Site, settings: Any) -> None:
    settings.ARGUS_WS_RECHECK_SECONDS = 0.5
    comm = await opened(site, viewer)
    await sync_to_async(Membership.objects.filter(user=viewer).delete)()
    assert await closed_with(comm, timeout=5) == SIGNED_OUT


async def test_a_member_in_good_standing_stays_connected_across_checks(viewer: User, site: Site, settings: Any) -> None:
    settings.ARGUS_WS_RECHECK_SECONDS = 0.2
    comm = await opened(site, viewer)
    await asyncio.sleep(1.0)  # five checks
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()
