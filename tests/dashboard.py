"""The dashboard's websocket, opened in this process (channels' communicator) as a user
who is logged in."""

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from realize_site.asgi import application


def logged_in_cookie() -> bytes:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("someone", password="long enough password")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_dashboard() -> WebsocketCommunicator:
    cookie = await database_sync_to_async(logged_in_cookie)()
    communicator = WebsocketCommunicator(
        application,
        "/ws/dashboard/",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect()
    assert connected
    # A page starts from the current state, sent as soon as it connects.
    first = await communicator.receive_json_from(timeout=30)
    assert first["type"] == "household.changed"
    return communicator
