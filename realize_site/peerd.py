"""`realize serve`: peerd assembled, the one place peers.daemon meets areas.serve."""

import asyncio
import signal
from typing import TextIO

from areas.files import hashing
from areas.serve import AreaService
from peers.daemon import PeerDaemon
from peers.identity import load_identity
from peers.models import LocalPeer
from realize_site.lib import collector


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
        asyncio.run(daemon.run())
    except KeyboardInterrupt:
        pass
    finally:
        hashing.stop_processes()


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM (from `realize up`) ends peerd as Ctrl-C does.

    The hashing processes then stop cleanly; otherwise their semaphores are reported leaked."""
    raise KeyboardInterrupt(f"signal {signum}")
