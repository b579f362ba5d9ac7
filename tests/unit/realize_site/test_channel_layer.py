"""The live channel's Redis reads outlast the channel layer's blocking wait.

channels_redis waits for a message with BZPOPMIN for 5 s; redis-py 8 gives every socket a
5 s read timeout by default. The two raced: an idle page's websocket died every few seconds
with "Timeout reading from 127.0.0.1:6379" in web.log, and the page reconnected.
And it works at once after Redis restarts."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from tests.appliance import Redis

IDLE = 12.0  # two of the layer's blocking waits, and more


@pytest.mark.asyncio
async def test_an_idle_channel_waits_without_a_redis_timeout():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    with pytest.raises(asyncio.TimeoutError):  # ours: nothing came, and nothing failed
        await asyncio.wait_for(layer.receive(channel), IDLE)
    await layer.send(channel, {"type": "still.there"})
    assert (await asyncio.wait_for(layer.receive(channel), IDLE))["type"] == "still.there"


@pytest.mark.asyncio
async def test_the_channel_works_at_once_after_redis_restarts(tmp_path, settings):
    """Every connection pooled before a restart is dead after it: the first command on
    each failed, and a page opening its websocket then got an HTTP 500."""
    server = Redis(tmp_path)
    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"])
    config["hosts"] = [{**config["hosts"][0], "address": server.url(0)}]
    layer = RedisChannelLayer(**config)
    try:
        channels = [await layer.new_channel() for _ in range(4)]
        for _ in range(2):  # concurrent commands: several pooled connections
            await asyncio.gather(*(layer.group_add("g", c) for c in channels))
        server.stop()
        server.start()
        for channel in channels:
            await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "after.restart"})
        assert (await asyncio.wait_for(layer.receive(channels[0]), IDLE))["type"] == (
            "after.restart"
        )
    finally:
        await layer.flush()
        server.stop()
