"""Data links (peers.link): a worker's own TLS connection to a listening peer, for bulk reads.

They authenticate like peerd's connections, carry reads only, and take the content of a
consensus past this peer's peerd.
"""

import json
import os

import pytest

from peers import peer_id
from peers.identity import create_identity, load_identity
from peers.link import Link, LinkFailed
from peers.protocol import RemoteError

from .appliance import wait_for
from .household import AREA, make_household

MiB = 1024 * 1024


@pytest.fixture
def pair(tmp_path):
    alpha, beta = make_household(tmp_path, ["alpha", "beta"])
    yield alpha, beta
    for member in (alpha, beta):
        member.destroy()


def _dial(to, home, expect=None) -> Link:
    key = peer_id.decode(expect or to.peer_id)
    return Link.dial(to.listen, key, load_identity(home), "beta", timeout=30)


def _ask(link: Link, op: str, **args):
    results = link.pipeline(op, [args], depth=1)
    try:
        return next(results)
    finally:
        results.close()


def test_a_data_link_serves_reads_and_nothing_else(pair):
    alpha, beta = pair
    (alpha.dir / "a.txt").write_bytes(b"hello\n")
    beta.consensus(alpha)
    link = _dial(alpha, beta.home)
    try:
        answer = _ask(link, "history", area=AREA, since=0, limit=10)
        assert [e["path"] for e in answer["events"]] == ["a.txt"]
        for op in ("pull", "begin", "ack", "areas"):
            with pytest.raises(RemoteError, match="not served on a data link"):
                _ask(link, op, area=AREA)
        # Still open after the refusals, and the peer still connected to beta.
        assert _ask(link, "blobs", hashes=[]) == {}
    finally:
        link.close()
    assert "alpha" in _traffic(beta)


def test_a_stranger_or_the_wrong_peer_gets_no_data_link(pair, tmp_path):
    alpha, beta = pair
    (tmp_path / "home-mallory").mkdir()
    mallory, _ = create_identity(tmp_path / "home-mallory")
    with pytest.raises(LinkFailed):
        _dial(alpha, tmp_path / "home-mallory")
    # Refused during the handshake, and recorded for the dashboard like any stranger.
    wait_for(
        lambda: alpha.sql("SELECT 1 FROM peers_stranger WHERE public_key = %s", mallory.public_key),
        "alpha to record the stranger",
    )
    # alpha is not the peer we meant to reach: its certificate is not trusted.
    with pytest.raises(LinkFailed):
        _dial(alpha, beta.home, expect=beta.peer_id)


def test_the_content_of_a_consensus_bypasses_peerd(pair):
    alpha, beta = pair
    content = os.urandom(4 * MiB)
    (alpha.dir / "big.bin").write_bytes(content)
    before = _traffic(beta)["alpha"]["received"]
    beta.consensus(alpha)
    assert (beta.dir / "big.bin").read_bytes() == content
    # beta's worker fetched the content over a data link of its own: beta's peerd carried
    # only the requests that go to alpha's peerd (begin, pull, ack).
    assert _traffic(beta)["alpha"]["received"] - before < MiB
    # alpha's peerd served the content, and counts it as traffic with beta.
    assert _traffic(alpha)["beta"]["sent"] > 4 * MiB


def _traffic(member) -> dict:
    return json.loads(member.run("status", "--json").stdout)["traffic"]


class _Peerd:
    """Stands in for the client of peerd: says that a request went through it."""

    timeout = 5.0

    def request(self, peer, op, args):
        return ("through peerd", peer, op)


def test_a_peer_that_cannot_be_dialled_is_asked_through_peerd(tmp_path):
    from peers.client import RemotePeer
    from peers.link import Links

    identity, _ = create_identity(tmp_path)
    unreachable = Links("127.0.0.1:1", os.urandom(32), identity, "beta", timeout=5)
    remote = RemotePeer(_Peerd(), "alpha", unreachable)
    assert remote.call("history", area=AREA) == ("through peerd", "alpha", "history")
    assert not unreachable.usable  # the rest of the run does not try again
    # What a data link does not carry goes through peerd in any case.
    assert remote.call("pull", area=AREA) == ("through peerd", "alpha", "pull")
