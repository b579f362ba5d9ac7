"""`realize serve`: peerd assembled, the one place peers.daemon meets areas.serve."""

import asyncio
import logging
import signal
import time
from typing import TextIO

from areas.files import hashing
from areas.serve import AreaService
from peers.client import DIALLED
from peers.daemon import PeerDaemon, db
from peers.identity import load_identity
from peers.models import LocalPeer
from realize_site.lib import collector
from realize_site.sampling import Sampler, combined, until_next

log = logging.getLogger("peerd")


def register(commands) -> None:
    serve_parser = commands.add_parser("serve", help="run the peer daemon in the foreground")
    serve_parser.set_defaults(run=run_serve)


def run_serve(options: dict, out: TextIO) -> None:
    serve()


def serve() -> None:
    identity = load_identity()
    local = LocalPeer.get()
    if local is None:
        raise RuntimeError("this appliance is not initialised: run 'realize init --name NAME'")
    daemon = PeerDaemon(identity, local.name, local.listen_address, AreaService())
    # Scans chunk and hash files in processes of their own, leaving peerd's GIL to serving
    # peers (areas.files.hashing).
    hashing.use_processes()
    collector.settle()
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        asyncio.run(_run(daemon))
    except KeyboardInterrupt:
        pass
    finally:
        hashing.stop_processes()


async def _run(daemon: PeerDaemon) -> None:
    asyncio.get_running_loop().set_exception_handler(_loop_error)
    sampling = asyncio.create_task(_sample_traffic(daemon))
    try:
        await daemon.run()
    finally:
        sampling.cancel()


async def _sample_traffic(daemon: PeerDaemon) -> None:
    """Each minute, peerd's bytes with each peer, written in a thread (realize_site.sampling)."""
    sampler = Sampler("peerd")
    while True:
        await asyncio.sleep(until_next(time.time()))
        try:
            traffic = await daemon.local_request({"op": "traffic"})
            totals = {peer: (t["sent"], t["received"]) for peer, t in traffic.items()}
            await db(sampler.record, combined(totals, DIALLED.totals()))
        except Exception:
            log.exception("could not take a sample of the traffic")


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """asyncio's report of an error outside any task, but not a connection's task cancelled
    as peerd stops: Python 3.11's streams report that as an error, with a traceback (3.12
    no longer does)."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM (from `realize up`) ends peerd as Ctrl-C does.

    The hashing processes then stop cleanly; otherwise their semaphores are reported leaked."""
    raise KeyboardInterrupt(f"signal {signum}")
