"""A run a peer asks of this one (its pull here) always ends: as failed when the pull or
the recording of its end fails, once the database answers again."""

import pytest
from django.db import DatabaseError

from areas.models import ConsensusRun
from areas.pull import consensus
from peers.models import Peer

KEY = b"k" * 32


@pytest.fixture
def beta():
    return Peer.objects.create(name="beta", public_key=KEY)


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_end_cannot_be_recorded_at_first_still_ends(docs, beta, monkeypatch):
    def pull(area, peer, remote, run=None):
        raise OSError("the connection to beta is lost")

    real_finish, calls = ConsensusRun.finish, []

    def finish(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the database went away just then
            raise DatabaseError("connection failed")
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(consensus, "pull", pull)
    monkeypatch.setattr(ConsensusRun, "finish", finish)
    with pytest.raises(OSError):
        consensus.pull_for_peer(KEY, "docs", remote=None)
    run = ConsensusRun.objects.get()
    assert (run.status, run.trigger) == ("failed", ConsensusRun.ASKED_BY_PEER)
    assert "connection to beta is lost" in run.error and len(calls) == 2


@pytest.mark.django_db(transaction=True)
def test_a_paused_area_refuses_a_peers_pull(docs, beta):
    docs.paused = True
    docs.save()
    with pytest.raises(LookupError, match="paused"):
        consensus.pull_for_peer(KEY, "docs", remote=None)
    assert not ConsensusRun.objects.exists()
