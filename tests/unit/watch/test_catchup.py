"""Which runs a peer starts as another connects (areas.watch.catchup): a catch-up where the two
synced before, a first run where this peer joins, nothing where neither knows who is new."""

import os

import pytest

from areas.models import Area, ConsensusRunQuerySet, PeerArea
from areas.watch import catchup
from peers.models import Peer

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(
        ConsensusRunQuerySet, "request", lambda self, a, p, t: calls.append((a.name, t))
    )
    return calls


def _setup(tmp_path, seq=0):
    area = Area.objects.create(name="docs", path=str(tmp_path), history_seq=seq)
    peer = Peer.objects.create(name="alpha", public_key=os.urandom(32))
    return area, peer


def test_a_newcomer_with_nothing_pulls_first_from_a_peer_with_history(tmp_path, started):
    _, peer = _setup(tmp_path)
    assert catchup.catch_up(bytes(peer.public_key), {"docs": (12, False)}) == [("docs", "join")]
    assert started == [("docs", "join")]


def test_a_newcomer_with_files_pulls_first_from_an_established_member(tmp_path, started):
    _, peer = _setup(tmp_path, seq=5)
    catchup.catch_up(bytes(peer.public_key), {"docs": (12, True)})
    assert started == [("docs", "join")]


def test_two_peers_new_to_an_area_with_files_leave_the_first_run_to_the_user(tmp_path, started):
    _, peer = _setup(tmp_path, seq=5)
    catchup.catch_up(bytes(peer.public_key), {"docs": (12, False)})
    assert started == []


def test_an_established_member_leaves_the_first_run_to_the_newcomer(tmp_path, started):
    area, peer = _setup(tmp_path, seq=5)
    other = Peer.objects.create(name="gamma", public_key=os.urandom(32))
    PeerArea.objects.create(peer=other, area=area, pulled_seq=3, acked_seq=5)
    catchup.catch_up(bytes(peer.public_key), {"docs": (0, False)})
    catchup.catch_up(bytes(peer.public_key), {"docs": (7, False)})
    assert started == []


def test_a_peer_synced_before_is_caught_up_only_when_behind(tmp_path, started):
    area, peer = _setup(tmp_path, seq=9)
    shared = PeerArea.objects.create(peer=peer, area=area, pulled_seq=4, acked_seq=9)
    catchup.catch_up(bytes(peer.public_key), {"docs": (4, True)})
    assert started == []
    PeerArea.objects.filter(pk=shared.pk).update(acked_seq=6)
    catchup.catch_up(bytes(peer.public_key), {"docs": (4, True)})
    assert started == [("docs", "reconnect")]


def test_areas_the_peer_does_not_have_are_left_alone(tmp_path, started):
    _, peer = _setup(tmp_path)
    catchup.catch_up(bytes(peer.public_key), {"music": (12, True)})
    assert started == []


def test_the_states_this_peer_gives(tmp_path):
    area, peer = _setup(tmp_path, seq=3)
    Area.objects.create(name="music", path=str(tmp_path / "m"))
    assert catchup.area_states(peer) == {"docs": [3, False], "music": [0, False]}
    PeerArea.objects.create(peer=peer, area=area, pulled_seq=1)
    assert catchup.area_states(peer)["docs"] == [3, True]


@pytest.mark.parametrize(
    "answer",
    [
        ["docs"],
        {"docs": [1]},
        {"docs": [-1, False]},
        {"docs": [1, 0]},
        {"docs": [True, False]},
        {"docs": ["1", False]},
        {1: [1, False]},
        None,
    ],
)
def test_a_bad_answer_is_refused(answer):
    with pytest.raises(ValueError):
        catchup.parse_states(answer)


def test_a_good_answer_is_read():
    assert catchup.parse_states({"docs": [4, True]}) == {"docs": (4, True)}
