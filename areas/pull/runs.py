"""Starting consensus with the connected peers sharing an area, and waiting for the runs.

Used by the command line, the browser and peerd's fast path."""

import io
import logging
import time
from typing import TextIO

from areas.models import Area, ConsensusRun
from areas.register import AreaError
from peers.client import PeerdClient, RemotePeer
from peers.models import Peer
from peers.wire import RemoteError
from realize_site.lib import first_line, one_line

log = logging.getLogger(__name__)
CONNECT_WAIT = 30.0


def peers_sharing(
    client: PeerdClient, area: Area, only: str | None = None, connect_wait: float = CONNECT_WAIT
) -> list[Peer]:
    """The household peers connected through peerd that have an area of this name.

    With `only`, that peer once connected (waiting up to `connect_wait` seconds), unasked:
    a refusal comes from the run. Raises PeerdUnavailable when peerd is not running.
    """
    if only is not None:
        peer = Peer.objects.filter(name=only).first()
        if peer is None:
            raise AreaError(f"no peer named {only!r} in the household")
        if peer.paused:
            raise AreaError(f"peer {only} is paused: resume it to sync with it")
        if not area.is_shared_with(peer):
            raise AreaError(f"area {area.name} is not shared with {only}")
        deadline = time.monotonic() + connect_wait
        while only not in client.connected():
            if time.monotonic() > deadline:
                raise ConnectionError(f"peer {only} is not connected")
            time.sleep(0.5)
        return [peer]
    sharing = []
    for name in client.connected():
        peer = Peer.objects.filter(name=name).first()
        if peer is None or peer.paused or not area.is_shared_with(peer):
            continue
        try:
            if area.name in RemotePeer(client, name).call("areas"):
                sharing.append(peer)
        except (RemoteError, ConnectionError):
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
    if area.paused:
        raise AreaError(f"area {area.name} is paused: resume it to sync it")
    client = PeerdClient() if timeout is None else PeerdClient(timeout=timeout)
    with client:
        peers = peers_sharing(client, area, only, connect_wait)
    return [ConsensusRun.objects.request(area, peer, trigger) for peer in peers]


# A run not picked up by a worker within this many seconds is reported as such.
PICKUP_WAIT = 600.0
# A waiting command reads its run's status when told the run ended, and at least this often.
CHECK_EVERY = 0.5


def consensus_now(area_name: str, only: str | None, out: TextIO) -> None:
    """`realize consensus`: run with each connected sharing peer (or `only`) and print results.

    RuntimeError if any run failed."""
    area = Area.objects.filter(name=area_name).first()
    if area is None:
        raise AreaError(f"no area named {area_name!r}")
    runs = start_consensus(area, "command", only=only)
    if not runs:
        raise ConnectionError(f"no connected peer shares area {area.name}")
    failures = []
    for run in runs:
        run = run.wait(PICKUP_WAIT, CHECK_EVERY)
        line = (
            f"{area.name} with {run.peer_name}: {run.status}; "
            f"received {run.files_in} files ({run.bytes_in} bytes), "
            f"sent {run.files_out} files ({run.bytes_out} bytes)"
        )
        if run.conflicts:
            line += f", {run.conflicts} conflicts kept as copies"
        out.write(line + "\n")
        if run.status == ConsensusRun.Status.FAILED:
            failures.append(f"consensus with {run.peer_name} failed: {run.error}")
    out.flush()
    if failures:
        raise RuntimeError("; ".join(failures))


def consensus_report(area_name: str, only: str | None) -> dict:
    """consensus_now inside peerd, for realize_site.fast_consensus: its output and error line."""
    out = io.StringIO()
    try:
        consensus_now(area_name, only, out)
    except Exception as exc:
        message = one_line(exc)
        if message is None:
            log.exception("realize consensus failed inside peerd")
            message = f"internal error ({type(exc).__name__}): {first_line(exc)}; see peerd's log"
        return {"output": out.getvalue(), "error": message}
    return {"output": out.getvalue(), "error": None}
