"""The bytes of the data links a process dials are counted under their peer's name
(peers.client.DIALLED): only that process sees them, and it samples them for the charts."""

import socket

from peers.client import DIALLED, Link
from peers.wire import pack


def test_a_data_link_counts_its_bytes_under_its_peer():
    ours, theirs = socket.socketpair()
    before = DIALLED.totals().get("delta", (0, 0))
    link = Link(ours, peer="delta")
    link.send({"id": 1, "op": "chunks", "args": {}})
    answer = pack({"re": 1, "ok": True, "result": b"x" * 1000})
    theirs.sendall(answer)
    assert link.receive()["result"] == b"x" * 1000
    sent, received = DIALLED.totals()["delta"]
    asked = len(pack({"id": 1, "op": "chunks", "args": {}}))
    assert (sent - before[0], received - before[1]) == (asked, len(answer))
    link.close()
    theirs.close()
