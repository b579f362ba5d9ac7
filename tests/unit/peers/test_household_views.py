import os

import pytest
from django.urls import reverse

from peers.identity import peer_id
from peers.models import Peer

pytestmark = pytest.mark.django_db


def some_id() -> str:
    return peer_id.encode(os.urandom(32))


def test_household_page_lists_peers(admin_client):
    Peer.objects.create(name="beta", public_key=os.urandom(32), address="10.0.0.2:7000")
    page = admin_client.get(reverse("household"))
    assert page.status_code == 200
    assert b"beta" in page.content and b"10.0.0.2:7000" in page.content


def test_add_a_listening_peer(admin_client):
    the_id = some_id()
    response = admin_client.post(
        reverse("household"), {"name": "beta", "peer_id": the_id, "address": "127.0.0.1:7002"}
    )
    assert response.status_code == 302
    peer = Peer.objects.get()
    assert (peer.name, peer.peer_id, peer.address) == ("beta", the_id, "127.0.0.1:7002")
    assert b"Added peer beta" in admin_client.get(response.url).content


def test_add_a_deaf_peer(admin_client):
    admin_client.post(reverse("household"), {"name": "laptop", "peer_id": some_id(), "address": ""})
    assert Peer.objects.get().is_deaf


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "beta", "peer_id": "nonsense"}, "bad peer id"),
        ({"name": "no spaces", "peer_id": "GOOD"}, "not a valid peer name"),
        ({"name": "beta", "peer_id": "GOOD", "address": "nowhere"}, "bad address"),
        ({"name": "", "peer_id": "GOOD"}, "This field is required"),
    ],
)
def test_bad_input_shows_a_message_and_saves_nothing(admin_client, form, message):
    form = {key: some_id() if value == "GOOD" else value for key, value in form.items()}
    response = admin_client.post(reverse("household"), form)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Peer.objects.exists()


def test_duplicates_are_refused(admin_client):
    the_id = some_id()
    admin_client.post(reverse("household"), {"name": "beta", "peer_id": the_id})
    same_name = admin_client.post(reverse("household"), {"name": "beta", "peer_id": some_id()})
    same_key = admin_client.post(reverse("household"), {"name": "gamma", "peer_id": the_id})
    assert "already in the household" in same_name.content.decode()
    assert "already in the household as &#x27;beta&#x27;" in same_key.content.decode()
    assert Peer.objects.count() == 1


def test_remove(admin_client):
    Peer.objects.create(name="beta", public_key=os.urandom(32))
    response = admin_client.post(reverse("remove_peer", args=["beta"]))
    assert response.status_code == 302
    assert not Peer.objects.exists()


def test_remove_needs_post(admin_client):
    Peer.objects.create(name="beta", public_key=os.urandom(32))
    assert admin_client.get(reverse("remove_peer", args=["beta"])).status_code == 405
    assert Peer.objects.exists()


def test_dashboard_shows_this_peer(admin_client, settings, tmp_path):
    from peers import household
    from peers.identity import create_identity

    identity, _ = create_identity(tmp_path)
    household.init_local_peer(identity, "alpha", "127.0.0.1:7001")
    page = admin_client.get(reverse("dashboard")).content.decode()
    assert "alpha" in page and identity.peer_id in page and "127.0.0.1:7001" in page


def test_refused_connections_offer_to_add_the_peer(admin_client):
    from peers.household import record_stranger

    caller, answerer = os.urandom(32), os.urandom(32)
    record_stranger(caller, "127.0.0.1:50123", "incoming")
    record_stranger(answerer, "127.0.0.1:7009", "outgoing")
    page = admin_client.get(reverse("household")).content.decode()
    assert "Refused connections" in page
    caller_id, answerer_id = peer_id.encode(caller), peer_id.encode(answerer)
    # An incoming connection's address is the caller's outgoing port: not offered.
    assert f'href="/peers/?peer_id={caller_id}#add-peer"' in page
    assert f'href="/peers/?peer_id={answerer_id}&amp;address=127.0.0.1%3A7009#add-peer"' in page


def test_no_refused_connections_hides_the_section(admin_client):
    page = admin_client.get(reverse("household")).content.decode()
    assert 'data-live="strangers-card" hidden' in page


def test_add_this_peer_prefills_the_form_then_adds_it(admin_client):
    from peers.household import record_stranger
    from peers.models import Stranger

    key = os.urandom(32)
    record_stranger(key, "127.0.0.1:7009", "outgoing")
    the_id = peer_id.encode(key)
    page = admin_client.get(reverse("household"), {"peer_id": the_id, "address": "127.0.0.1:7009"})
    form = page.context["form"]
    assert not form.is_bound
    assert form.initial == {"peer_id": the_id, "address": "127.0.0.1:7009"}
    html = page.content.decode()
    assert f'value="{the_id}"' in html and 'value="127.0.0.1:7009"' in html

    response = admin_client.post(
        reverse("household"), {"name": "beta", "peer_id": the_id, "address": "127.0.0.1:7009"}
    )
    assert response.status_code == 302
    assert Peer.objects.get().name == "beta"
    assert not Stranger.objects.exists()


def test_a_stranger_trying_again_is_counted_and_seen_again():
    from peers.household import record_stranger
    from peers.models import Stranger

    key = os.urandom(32)
    record_stranger(key, "127.0.0.1:50123", "incoming")
    first = Stranger.objects.get().last_seen
    record_stranger(key, "127.0.0.1:50124", "incoming")
    stranger = Stranger.objects.get()
    assert (stranger.attempts, stranger.address) == (2, "127.0.0.1:50124")
    assert stranger.last_seen > first
