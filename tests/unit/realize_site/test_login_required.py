"""Every page, the admin, the API and the websocket refuse anyone not logged in."""

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import URLPattern, URLResolver, get_resolver

from realize_site.asgi import application

PUBLIC = {"login"}


def all_paths(patterns=None, prefix: str = "") -> list[tuple[str, str]]:
    """(name, path) for every URL pattern, with sample values for its parameters."""
    found = []
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += all_paths(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            path = route.replace("^", "").replace("$", "").replace("\\Z", "").replace("\\", "")
            for converter in (
                "<str:name>",
                "<path:object_id>",
                "<int:pk>",
                "<path:url>",
                "<str:app_label>",
                "<id>",
                "<run_id>",
                "<app_label>",
            ):
                path = path.replace(converter, "x")
            path = path.replace("(?P<app_label>auth|django_celery_beat|peers)", "auth")
            path = path.replace("(?P<object_id>.+)", "1").replace("(?P<url>.*)", "x")
            found.append((pattern.name or route, "/" + path))
    return found


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "path"), [p for p in all_paths() if p[0] not in PUBLIC])
def test_every_url_needs_login(client, name, path):
    for method in (client.get, client.post):
        response = method(path)
        # The login page for a person; 401 from the JSON API, for a script.
        assert response.status_code in (302, 401, 404, 405), (path, response.status_code)
        if response.status_code == 401:
            assert path.startswith("/api/v1/"), path
        if response.status_code == 302:
            assert "/login/" in response.url
        assert b"Household" not in response.content


@pytest.mark.django_db
def test_the_route_list_covers_the_site():
    paths = [p for _, p in all_paths()]
    assert "/" in paths and "/peers/" in paths and "/areas/" in paths and "/admin/" in paths


@pytest.mark.django_db
def test_login_page_is_open(client):
    assert client.get("/login/").status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_websocket_refuses_anonymous():
    communicator = WebsocketCommunicator(
        application,
        "/ws/dashboard/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401
    await communicator.disconnect()
