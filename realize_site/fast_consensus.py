"""`realize consensus` through peerd, which has Django loaded already.

Starting Django is slow for a command line; peerd runs the same command
(areas.pull.runs.consensus_report) and sends back its output. Anything unusual (other
arguments, no peerd, an unknown request) falls back to the full command line.
"""

import socket
import sys

from peers.wire import ProtocolError, pack, recv_frame, unpack
from realize_site.lib import peerd_socket, realize_home


def consensus(args: list[str]) -> int | None:
    """The exit code, or None when the full command line must do it."""
    parsed = _parse(args)
    if parsed is None:
        return None
    area, peer = parsed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(peerd_socket(realize_home())))
    except OSError:
        sock.close()
        return None
    with sock:
        try:
            request = {"area": area, "peer": peer}
            sock.sendall(pack({"id": 1, "op": "consensus-now", "peer": None, "args": request}))
            reply = unpack(recv_frame(sock))
        except (OSError, ProtocolError):
            # peerd went away without an answer: the full command line finds out why.
            return None
    result = reply.get("result")
    if not reply.get("ok") or not isinstance(result, dict):
        return None
    sys.stdout.write(str(result.get("output") or ""))
    sys.stdout.flush()
    if result.get("error"):
        sys.stderr.write(f"realize: error: {result['error']}\n")
        return 1
    return 0


def _parse(args: list[str]) -> tuple[str, str | None] | None:
    """AREA [--peer NAME], in any of the usual spellings; None for anything else."""
    area, peer, rest = None, None, list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--peer" and rest and peer is None:
            peer = rest.pop(0)
        elif arg.startswith("--peer=") and peer is None:
            peer = arg.removeprefix("--peer=")
        elif not arg.startswith("-") and area is None:
            area = arg
        else:
            return None
    if area is None or peer is not None and (not peer or peer.startswith("-")):
        return None
    return area, peer
