"""The live channel's Redis reads outlast the channel layer's blocking wait.

channels_redis waits for a message with BZPOPMIN for 5 s; redis-py 8 gives every socket a
5 s read timeout by default. The two raced: an idle page's websocket died every few seconds
with "Timeout reading from 127.0.0.1:6379" in web.log, and the page reconnected."""

import asyncio

import pytest
from channels.layers import get_channel_layer

IDLE = 12.0  # two of the layer's blocking waits, and more


@pytest.mark.asyncio
async def test_an_idle_channel_waits_without_a_redis_timeout():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    with pytest.raises(asyncio.TimeoutError):  # ours: nothing came, and nothing failed
        await asyncio.wait_for(layer.receive(channel), IDLE)
    await layer.send(channel, {"type": "still.there"})
    assert (await asyncio.wait_for(layer.receive(channel), IDLE))["type"] == "still.there"
