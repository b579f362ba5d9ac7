"""A change made through the command line reaches open dashboards over the websocket."""

import os
import subprocess

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

from peers.identity import peer_id
from tests.appliance import REALIZE, database_url
from tests.dashboard import open_dashboard

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def cli_env() -> dict:
    """The command line pointed at this test's own database, Redis and home."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url(settings.DATABASES["default"]["NAME"])
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


async def run_cli(*args: str) -> subprocess.CompletedProcess:
    return await sync_to_async(subprocess.run)(
        [REALIZE, *args], env=cli_env(), capture_output=True, text=True, timeout=120, check=True
    )


async def test_peer_added_through_the_cli_reaches_the_dashboard():
    dashboard = await open_dashboard()
    the_id = peer_id.encode(os.urandom(32))
    await run_cli("peer", "add", "beta", the_id, "--address", "127.0.0.1:7002")

    event = await dashboard.receive_json_from(timeout=30)
    assert event["type"] == "household.changed"
    assert event["peers"] == [
        {"name": "beta", "peer_id": the_id, "address": "127.0.0.1:7002", "paused": False}
    ]

    await run_cli("peer", "remove", "beta")
    event = await dashboard.receive_json_from(timeout=30)
    assert event["peers"] == []
    await dashboard.disconnect()


async def test_a_refused_change_sends_nothing():
    dashboard = await open_dashboard()
    with pytest.raises(subprocess.CalledProcessError):
        await run_cli("peer", "add", "beta", "not-an-id")
    assert await dashboard.receive_nothing(timeout=1)
    await dashboard.disconnect()


async def test_a_disabled_login_stops_receiving():
    from django.contrib.auth import get_user_model

    dashboard = await open_dashboard()
    await database_sync_to_async(get_user_model().objects.update)(is_active=False)
    await run_cli("peer", "add", "beta", peer_id.encode(os.urandom(32)))
    output = await dashboard.receive_output(timeout=30)
    assert output == {"type": "websocket.close", "code": 4401}
    await dashboard.wait()
    # The consumer's permission check ran in a worker thread; let go of its connection.
    await database_sync_to_async(connections.close_all)()
