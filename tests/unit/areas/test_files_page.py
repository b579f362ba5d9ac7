"""An area's file browser: a directory a page at a time, each file's state, the way there
from the area's page; a bad path is a readable answer, never an error."""

import os

import pytest
from django.urls import reverse

from areas.models import Area, Conflict, Entry

pytestmark = pytest.mark.django_db

KEY = bytes(32)


def put(area: Area, path: str, size: int = 10) -> Entry:
    return Entry.objects.create(area=area, path=path, blob_hash=os.urandom(32), size=size)


def files(client, path: str | None = None, area: str = "docs", **query):
    if path is not None:
        query["path"] = path
    return client.get(reverse("area_files", args=[area]), query)


@pytest.fixture
def tree(docs):
    for path, size in [("readme.txt", 2048), ("photos/2024/a.jpg", 100), ("photos/b.jpg", 50)]:
        put(docs, path, size)
    Entry.objects.create(area=docs, path="deleted.txt", blob_hash=None)
    return docs


def test_anyone_not_logged_in_gets_the_login_page(client, tree):
    response = files(client, "photos")
    assert response.status_code == 302 and "/login/" in response.url


def test_the_area_page_leads_to_its_files(admin_client, tree):
    html = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert 'href="/areas/docs/files/"' in html


def test_the_root_lists_directories_then_files(admin_client, tree):
    response = files(admin_client)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index('data-directory="photos"') < html.index('data-file="readme.txt"')
    assert 'href="?path=photos"' in html and "2 files" in html and "150\xa0bytes" in html
    assert "2.0\xa0KB" in html and '<span class="status real">real</span>' in html
    assert "deleted.txt" not in html
    assert '<nav aria-label="Breadcrumb"' in html and '<th scope="col">Name</th>' in html


def test_a_directory_has_a_breadcrumb_back_to_the_root(admin_client, tree):
    html = files(admin_client, "photos/2024").content.decode()
    assert 'data-file="a.jpg"' in html and "b.jpg" not in html
    assert 'href="/areas/docs/files/">docs</a>' in html
    assert 'href="/areas/docs/files/?path=photos">photos</a>' in html
    assert '<span aria-current="page">2024</span>' in html


def test_times_show_in_the_sites_one_format(admin_client, docs):
    Entry.objects.create(
        area=docs, path="a", blob_hash=KEY, mtime_ns=1_700_000_000_000_000_000
    )
    html = files(admin_client).content.decode()
    assert '<time datetime="2023-11-14T22:13:20+00:00">2023-11-14 22:13:20</time>' in html


def test_a_file_in_conflict_links_to_its_conflict(admin_client, tree):
    conflict = Conflict.objects.create(
        area=tree, path="readme.txt", other_origin=KEY, description="edited on both"
    )
    html = files(admin_client).content.decode()
    assert '<span class="status conflict">conflict</span>' in html
    assert reverse("conflict", args=["docs", conflict.pk]) in html


def test_an_unreal_file_shows_its_share_cached(admin_client, docs, home):
    docs.mode = Area.Mode.UNREAL
    docs.save()
    put(docs, "film.mkv", 4000)
    html = files(admin_client).content.decode()
    assert '<span class="status unreal">unreal 0% cached</span>' in html


def test_a_large_directory_comes_a_page_at_a_time(admin_client, docs):
    Entry.objects.bulk_create(
        Entry(area=docs, path=f"big/f{n:03}", blob_hash=KEY, size=1) for n in range(450)
    )
    first = files(admin_client, "big").content.decode()
    assert "f000" in first and "f199" in first and "f200" not in first
    assert "Page 1 of 3 (450 entries)" in first
    assert 'href="?path=big&amp;page=2" rel="next"' in first and 'rel="prev"' not in first
    last = files(admin_client, "big", page="3").content.decode()
    assert "f449" in last and "f399" not in last
    assert 'href="?path=big&amp;page=2" rel="prev"' in last and 'rel="next"' not in last
    assert files(admin_client, "big", page="9").url == "/areas/docs/files/?path=big&page=3"
    for odd in ("0", "-1", "x", "²", "9" * 40):
        assert "f000" in files(admin_client, "big", page=odd).content.decode()


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("..", 400, "has an empty, &#x27;.&#x27; or &#x27;..&#x27; component"),
        ("photos/../..", 400, "component"),
        ("/etc", 400, "absolute path"),
        ("a\x00b", 400, "path contains NUL"),
        ("x" * 5000, 400, "path too long"),
        ("nowhere", 404, "No directory nowhere in area docs."),
        ("readme.txt", 404, "Path readme.txt is a file, not a directory."),
    ],
)
def test_a_bad_path_gets_a_readable_answer(admin_client, tree, path, status, message):
    response = files(admin_client, path)
    assert response.status_code == status
    html = response.content.decode()
    assert message in html and 'role="alert"' in html
    assert 'href="/areas/docs/files/">Show the top of area docs</a>' in html


def test_an_unknown_area_is_not_found(admin_client):
    assert files(admin_client, area="nope").status_code == 404
    assert files(admin_client, area="bad\x00name").status_code == 404
