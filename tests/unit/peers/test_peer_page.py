"""One peer's page: edited, paused and resumed; bad values get a message and save nothing."""

import os

import pytest
from django.urls import reverse

from peers import household
from peers.models import Peer

pytestmark = pytest.mark.django_db


@pytest.fixture
def beta():
    return Peer.objects.create(name="beta", public_key=os.urandom(32), address="127.0.0.1:7002")


def test_the_page_shows_the_peer(admin_client, beta):
    page = admin_client.get(reverse("peer", args=["beta"]))
    assert page.status_code == 200
    assert beta.peer_id in page.content.decode() and b"Pause syncing" in page.content


@pytest.mark.parametrize("name", ["nobody", "x" * 5000, "bad\x00name"])
def test_an_unknown_peer_is_a_404(admin_client, name):
    assert admin_client.get(reverse("peer", args=[name])).status_code == 404


def test_rename_and_move(admin_client, beta):
    response = admin_client.post(
        reverse("peer", args=["beta"]), {"name": "gamma", "address": "127.0.0.1:7003"}
    )
    assert response.status_code == 302 and response.url == reverse("peer", args=["gamma"])
    peer = Peer.objects.get()
    assert (peer.name, peer.address, bytes(peer.public_key)) == (
        "gamma", "127.0.0.1:7003", bytes(beta.public_key)
    )  # fmt: skip


def test_an_empty_address_makes_it_deaf(admin_client, beta):
    admin_client.post(reverse("peer", args=["beta"]), {"name": "beta", "address": ""})
    assert Peer.objects.get().is_deaf


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "no spaces", "address": ""}, "not a valid peer name"),
        ({"name": "x" * 65, "address": ""}, "at most 64 characters"),
        ({"name": "beta", "address": "nowhere"}, "bad address"),
        ({"name": "delta", "address": ""}, "already in the household"),
        ({"name": "", "address": ""}, "This field is required"),
    ],
)
def test_bad_values_save_nothing(admin_client, beta, form, message):
    Peer.objects.create(name="delta", public_key=os.urandom(32))
    response = admin_client.post(reverse("peer", args=["beta"]), form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Peer.objects.get(pk=beta.pk).address == "127.0.0.1:7002"
    assert Peer.objects.get(pk=beta.pk).name == "beta"


def test_pause_and_resume(admin_client, beta):
    admin_client.post(reverse("peer_pause", args=["beta"]), {"paused": "1"})
    assert Peer.objects.get().paused
    page = admin_client.get(reverse("peer", args=["beta"])).content
    assert b"Resume syncing" in page and b"data-paused" in page
    admin_client.post(reverse("peer_pause", args=["beta"]), {"paused": "0"})
    assert not Peer.objects.get().paused
    assert admin_client.get(reverse("peer_pause", args=["beta"])).status_code == 405


def test_anonymous_users_get_the_login_page(client, beta):
    client.logout()
    for url in (reverse("peer", args=["beta"]), reverse("peer_pause", args=["beta"])):
        response = client.post(url, {"paused": "1"})
        assert response.status_code == 302 and "/login/" in response.url
    assert not Peer.objects.get().paused


def test_household_functions_refuse_what_is_not_there(beta):
    with pytest.raises(household.HouseholdError, match="no peer named 'nobody'"):
        household.set_paused("nobody", True)
    with pytest.raises(household.HouseholdError, match="no peer named 'nobody'"):
        household.edit_peer("nobody", "x")
    assert household.edit_peer("beta").name == "beta"  # nothing to change: nothing changed
