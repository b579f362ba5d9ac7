"""`realize consensus`, run as a command, finds the peers sharing an area as the Areas page's
"Run consensus now" does (tests/unit/areas/test_views.py): from peerd, or says why not."""

import os
import subprocess

import pytest

from peers.models import Peer
from tests.appliance import REALIZE
from tests.e2e.test_live_events import cli_env

# home, peerd (a fake peerd on home's socket) and docs are fixtures of tests/conftest.py.


def peer(name: str) -> Peer:
    return Peer.objects.create(name=name, public_key=os.urandom(32))


@pytest.mark.django_db(transaction=True)
def test_the_command_line_shares_the_lookup(docs, peerd, home):
    env = {**cli_env(), "REALIZE_HOME": str(home)}
    command = [REALIZE, "consensus", "docs"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "the peer daemon is not running" in result.stderr
    assert "Traceback" not in result.stderr

    peer("beta")
    peerd({"beta": ["music"]})
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no connected peer shares area docs" in result.stderr
