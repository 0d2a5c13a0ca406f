"""The live channel layer must wait quietly for messages: a receive that outlives redis-py's default
read timeout (5 s) used to raise, and every open dashboard socket dropped every few seconds."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer


@pytest.mark.timeout(30)
def test_a_receive_waits_past_the_redis_read_timeout_without_error() -> None:
    async def wait_for_nothing() -> str:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        try:
            await asyncio.wait_for(layer.receive(channel), 7.0)
        except TimeoutError:
            return "quiet"
        return "received"

    assert asyncio.run(wait_for_nothing()) == "quiet"
