"""Which connected peers share an area, and starting consensus with them (CLI and browser)."""

import time

from areas.models import Area, ConsensusRun
from areas.pull.consensus import request_consensus
from areas.register import AreaError
from peers.client.peerd import PeerdClient, RemotePeer
from peers.models import Peer
from peers.wire.protocol import RemoteError

CONNECT_WAIT = 30.0


def peers_sharing(
    client: PeerdClient, area: Area, only: str | None = None, connect_wait: float = CONNECT_WAIT
) -> list[Peer]:
    """The household peers connected through peerd that have an area of this name.

    With `only`, that one peer, once it is connected (waiting up to `connect_wait` seconds);
    it is not asked whether it shares the area, so a refusal comes from the run itself.
    Raises PeerdUnavailable when peerd is not running.
    """
    if only is not None:
        peer = Peer.objects.filter(name=only).first()
        if peer is None:
            raise AreaError(f"no peer named {only!r} in the household")
        deadline = time.monotonic() + connect_wait
        while only not in client.connected():
            if time.monotonic() > deadline:
                raise ConnectionError(f"peer {only} is not connected")
            time.sleep(0.5)
        return [peer]
    sharing = []
    for name in client.connected():
        try:
            if area.name in RemotePeer(client, name).call("areas"):
                sharing.append(Peer.objects.get(name=name))
        except (RemoteError, ConnectionError, Peer.DoesNotExist):
            continue
    return sharing


def start_consensus(
    area: Area,
    trigger: str,
    only: str | None = None,
    timeout: float | None = None,
    connect_wait: float = CONNECT_WAIT,
) -> list[ConsensusRun]:
    """Queue a run with every connected peer sharing `area` (or just `only`); [] if none.

    `timeout` bounds each request to peerd (the client's default when None).
    """
    client = PeerdClient() if timeout is None else PeerdClient(timeout=timeout)
    with client:
        peers = peers_sharing(client, area, only, connect_wait)
    return [request_consensus(area, peer, trigger) for peer in peers]
