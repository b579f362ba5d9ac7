"""A remote peer (peers.client.remote) asks through peerd when its data link cannot be
dialled, and what a data link does not carry (peers.client.links) goes through peerd anyway."""

import os

from peers.identity import create_identity
from tests.household import AREA


class _Peerd:
    """Stands in for the client of peerd: says that a request went through it."""

    timeout = 5.0

    def request(self, peer, op, args):
        return ("through peerd", peer, op)


def test_a_peer_that_cannot_be_dialled_is_asked_through_peerd(tmp_path):
    from peers.client import Links, RemotePeer

    identity, _ = create_identity(tmp_path)
    unreachable = Links("127.0.0.1:1", os.urandom(32), identity, "beta", timeout=5)
    remote = RemotePeer(_Peerd(), "alpha", unreachable)
    assert remote.call("history", area=AREA) == ("through peerd", "alpha", "history")
    assert not unreachable.usable  # the rest of the run does not try again
    # What a data link does not carry goes through peerd in any case.
    assert remote.call("pull", area=AREA) == ("through peerd", "alpha", "pull")
