"""The dashboard's websocket: forwards live events to logged-in browsers."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from peers.events import DASHBOARD_GROUP, household_snapshot

CLOSE_UNAUTHORIZED = 4401


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        await self.accept()
        # A page that (re)connects may have missed events: start it from the current state.
        await self.send_json(await database_sync_to_async(household_snapshot)())

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """The dashboard only listens; anything a browser sends is ignored."""

    async def _forward(self, event: dict) -> None:
        # A login removed or disabled since the page opened stops receiving at once.
        if not await self._still_allowed():
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

    @database_sync_to_async
    def _still_allowed(self) -> bool:
        user = self.scope["user"]
        return get_user_model().objects.filter(pk=user.pk, is_active=True).exists()
