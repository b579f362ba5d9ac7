"""The dashboard's websocket: forwards live events to logged-in browsers."""

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from redis.exceptions import RedisError

from peers.events import DASHBOARD_GROUP, household_snapshot

log = logging.getLogger(__name__)
CLOSE_UNAUTHORIZED = 4401


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        try:
            await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        except RedisError as exc:
            # Refused, not a server error: the page tries again, as after any drop.
            log.warning("a dashboard could not join the live channel: %s", exc)
            await self.close()
            return
        await self.accept()
        # A page that (re)connects may have missed events: start it from the current state.
        await self.send_json(await database_sync_to_async(household_snapshot)())

    async def disconnect(self, code: int) -> None:
        try:
            await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)
        except RedisError:
            pass  # Redis is gone: the layer drops the membership when it expires

    async def receive_json(self, content, **kwargs) -> None:
        """The dashboard only listens; anything a browser sends is ignored."""

    async def _forward(self, event: dict) -> None:
        # A login removed or disabled since the page opened stops receiving at once.
        try:
            allowed = await self._still_allowed()
        except DatabaseError as exc:
            # Not checked, not sent: the page reconnects, and its login is checked then.
            log.warning("a dashboard was closed: its login could not be checked: %s", exc)
            await self.close()
            return
        if not allowed:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self.send_json(event)

    # One method per event type sent to the group (type "a.b" calls a_b); Channels closes
    # the socket on a type without one.
    async def household_changed(self, event: dict) -> None:
        await self._forward(event)

    async def appliance_heartbeat(self, event: dict) -> None:
        await self._forward(event)

    async def consensus_run(self, event: dict) -> None:
        await self._forward(event)

    async def areas_changed(self, event: dict) -> None:
        await self._forward(event)

    async def peers_connections(self, event: dict) -> None:
        await self._forward(event)

    @database_sync_to_async
    def _still_allowed(self) -> bool:
        user = self.scope["user"]
        return get_user_model().objects.filter(pk=user.pk, is_active=True).exists()
