"""Data links (peers.client.links): a worker's own TLS link to a listening peer, for bulk reads.

They authenticate like peerd's connections, carry reads only, and take the content of a
consensus past this peer's peerd.
"""

import json
import os

import pytest

from peers.client import Link, LinkFailed
from peers.identity import create_identity, load_identity, peer_id
from peers.wire import RemoteError
from tests.appliance import wait_for
from tests.household import AREA, make_household

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


def test_large_new_files_are_staged_by_the_stager_beside_the_worker(pair):
    alpha, beta = pair
    large = {f"large-{n}.bin": os.urandom(3 * MiB + n) for n in range(3)}
    small = {f"dir/small-{n}.txt": os.urandom(100 + n) for n in range(20)}
    (alpha.dir / "dir").mkdir()
    for name, content in {**large, **small}.items():
        (alpha.dir / name).write_bytes(content)
    output = beta.consensus(alpha).stdout
    for name, content in {**large, **small}.items():
        assert (beta.dir / name).read_bytes() == content
    # Every byte counted, those the stager fetched included.
    total = sum(len(c) for c in large.values()) + sum(len(c) for c in small.values())
    assert f"received 23 files ({total} bytes)" in output
    # The stager, a process of beta's worker (kept for the next pull), wrote the large ones.
    worker = beta.up_state()["programs"]["worker"]["pid"]
    stagers = [pid for pid, _, command in _processes() if "areas.stager.process" in command]
    [stager] = [pid for pid in stagers if _descends(pid, worker)]
    assert _written(stager) >= sum(len(c) for c in large.values())
    assert list((beta.home / "staging").glob("*/*")) == []


def _written(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        return int(next(line for line in f if line.startswith("wchar:")).split()[1])


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found.append((int(entry), parent, command))
    return found


def _descends(pid: int, ancestor: int) -> bool:
    parents = {p: parent for p, parent, _ in _processes()}
    while pid in parents and pid > 1:
        if pid == ancestor:
            return True
        pid = parents[pid]
    return False


def _traffic(member) -> dict:
    return json.loads(member.run("status", "--json").stdout)["traffic"]
