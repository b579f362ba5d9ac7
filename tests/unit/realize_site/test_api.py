"""The JSON API: a script with a token reads and changes what the pages show; without a
login or a token, 401; its documentation is a page (for a login)."""

import pytest
from django.test import Client

from areas.models import Area, Conflict, Entry
from realize_site.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(admin_user):
    _, token = ApiToken.objects.issue(admin_user, "script")
    return token


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_script_with_a_token_reads_the_state(token, docs, home):
    script = Client()
    state = script.get("/api/v1/status", **bearer(token)).json()
    assert [a["name"] for a in state["areas"]] == ["docs"]
    assert state["areas"][0]["paused"] is False
    area = script.get("/api/v1/areas/docs", **bearer(token)).json()
    assert area["area"]["path"] == docs.path and area["runs"] == [] and area["windows"] == []
    assert script.get("/api/v1/areas/nope", **bearer(token)).status_code == 404
    assert ApiToken.objects.get().last_used_at is not None


def test_a_script_changes_an_area(token, docs, home):
    script = Client(enforce_csrf_checks=True)  # a token needs no CSRF token
    assert script.post("/api/v1/areas/docs/pause", **bearer(token)).json()["paused"] is True
    assert Area.objects.get().paused
    answer = script.post("/api/v1/areas/docs/consensus", **bearer(token))
    assert answer.status_code == 409 and "paused" in answer.json()["detail"]
    script.post("/api/v1/areas/docs/resume", **bearer(token))
    answer = script.post("/api/v1/areas/docs/consensus", **bearer(token))
    assert answer.status_code == 503 and "peer daemon" in answer.json()["detail"]


def test_without_a_login_or_a_token_401(docs):
    anonymous = Client()
    for path in (
        "/api/v1/status",
        "/api/v1/areas",
        "/api/v1/areas/docs",
        "/api/v1/areas/docs/files",
        "/api/v1/runs/1",
    ):
        assert anonymous.get(path).status_code == 401
        assert anonymous.get(path, **bearer("rlz_wrong")).status_code == 401
    assert anonymous.post("/api/v1/areas/docs/pause").status_code == 401
    assert not Area.objects.get().paused
    assert "/login/" in anonymous.get("/api/v1/docs").url  # the docs page: for a login


def test_a_revoked_token_is_refused_and_a_session_works(admin_client, token, docs):
    assert admin_client.get("/api/v1/areas").status_code == 200  # a logged-in browser
    page = admin_client.get("/api/v1/docs")
    assert page.status_code == 200 and b"swagger" in page.content.lower()
    schema = admin_client.get("/api/v1/openapi.json").json()
    assert "/api/v1/areas/{name}/consensus" in schema["paths"]
    assert "websocket" in schema["info"]["description"]
    row = ApiToken.objects.get()
    admin_client.post("/api/tokens/", {"revoke": row.pk})
    assert Client().get("/api/v1/areas", **bearer(token)).status_code == 401


def test_the_tokens_page_shows_a_new_token_once(admin_client):
    page = admin_client.post("/api/tokens/", {"name": "backup"}).content.decode()
    row = ApiToken.objects.get()
    assert row.name == "backup" and "rlz_" in page
    again = admin_client.get("/api/tokens/").content.decode()
    assert "backup" in again and row.digest not in again and "Bearer rlz_" not in again


def test_a_script_lists_an_areas_files(token, docs, home):
    for path, size in [("a/x.txt", 3), ("a/y/z", 4), ("b.txt", 5), ("c.txt", 6)]:
        Entry.objects.create(area=docs, path=path, blob_hash=bytes([size]) * 32, size=size)
    conflict = Conflict.objects.create(
        area=docs, path="c.txt", other_origin=bytes(32), description="edited on both"
    )
    script = Client()
    root = script.get("/api/v1/areas/docs/files", **bearer(token)).json()
    assert (root["area"], root["path"], root["offset"], root["total"]) == ("docs", "", 0, 3)
    assert root["directories"] == [{"name": "a", "path": "a", "files": 2, "size": 7}]
    b, c = root["files"]
    assert (b["name"], b["size"], b["state"], b["status"], b["cached"]) == (
        "b.txt",
        5,
        "real",
        "real",
        None,
    )
    assert (c["state"], c["conflict_id"]) == ("conflict", conflict.pk)
    page = script.get(
        "/api/v1/areas/docs/files", {"path": "a", "offset": 1, "limit": 1}, **bearer(token)
    ).json()
    assert (page["total"], page["directories"], [f["path"] for f in page["files"]]) == (
        2,
        [],
        ["a/x.txt"],
    )


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"path": ".."}, 400),
        ({"path": "/etc"}, 400),
        ({"path": "a\x00b"}, 400),
        ({"path": "x" * 5000}, 400),
        ({"path": "nowhere"}, 404),
        ({"offset": -1}, 422),
        ({"limit": 0}, 422),
        ({"limit": 5000}, 422),
        ({"offset": "x"}, 422),
        ({"offset": 10**30}, 422),
    ],
)
def test_a_bad_files_query_gets_a_reason(token, docs, query, status):
    answer = Client().get("/api/v1/areas/docs/files", query, **bearer(token))
    assert answer.status_code == status
    assert answer.json()["detail"]


def test_the_files_of_an_unknown_area_are_not_found(token):
    for name in ("nope", "bad%00name"):
        answer = Client().get(f"/api/v1/areas/{name}/files", **bearer(token))
        assert answer.status_code == 404
