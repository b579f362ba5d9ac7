"""What a peer sends is checked: tampered chunks, escaping paths and broken frames are refused,
nothing is written, and peerd goes on serving the others."""

import json
import os
import socket
import struct

import blake3
import psycopg
import pytest

from tests.appliance import database_url, wait_for
from tests.fakepeer import FakePeer
from tests.household import AREA


@pytest.fixture
def victim(appliances, tmp_path):
    alpha = appliances("alpha", listen=f"127.0.0.1:{_port()}")
    area = tmp_path / "area-alpha"
    area.mkdir()
    alpha.run("area", "add", AREA, str(area))
    alpha.area = area
    fake = FakePeer(tmp_path / "home-mallory", alpha.peer_id)
    alpha.run("peer", "add", "mallory", fake.peer_id, "--address", fake.address)
    alpha.up()
    alpha.fake = fake
    yield alpha
    fake.close()


def _port() -> int:
    from tests.appliance import free_port

    return free_port()


def serve_history(fake: FakePeer, events: list[dict], contents: dict[bytes, bytes]) -> None:
    fake.answers.update(
        {
            "areas": lambda args: [AREA],
            "begin": lambda args: {"head": len(events)},
            "history": lambda args: {"events": events, "next": len(events), "more": False},
            "blobs": lambda args: {h: [[h, len(contents[h])]] for h in args["hashes"]},
            "chunks": lambda args: [contents[h] for h in args["hashes"]],
            "pull": lambda args: {"files": 0, "bytes": 0, "conflicts": 0, "errors": []},
        }
    )


def event(path: str, content: bytes, seq: int = 1, origin: bytes = b"m" * 32) -> dict:
    return {
        "seq": seq,
        "kind": "create",
        "path": path,
        "old_path": "",
        "blob": blake3.blake3(content).digest(),
        "base": None,
        "size": len(content),
        "mtime_ns": 1_700_000_000_000_000_000,
        "mode": 0o644,
        "origin": origin,
        "origin_seq": seq,
        "version": [[origin, seq]],
    }


def consensus(alpha):
    return alpha.run("consensus", AREA, "--peer", "mallory", check=False, timeout=300)


def files_under(path) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs
    )


def test_a_tampered_chunk_is_rejected(victim):
    content = b"the real content\n"
    digest = blake3.blake3(content).digest()
    serve_history(victim.fake, [event("note.txt", content)], {digest: content})
    victim.fake.answers["chunks"] = lambda args: [b"X" * len(content) for _ in args["hashes"]]

    result = consensus(victim)
    assert result.returncode != 0
    assert "hash does not match" in result.stderr
    assert files_under(victim.area) == []

    # Served honestly, the same change then applies.
    victim.fake.answers["chunks"] = lambda args: [content for _ in args["hashes"]]
    assert consensus(victim).returncode == 0
    assert (victim.area / "note.txt").read_bytes() == content


def test_a_chunk_sent_wrong_is_fetched_from_another_peer(victim, appliances, tmp_path):
    content = b"the real content, also on beta\n"
    digest = blake3.blake3(content).digest()
    beta = appliances("beta", listen=f"127.0.0.1:{_port()}")
    beta_area = tmp_path / "area-beta"
    beta_area.mkdir()
    (beta_area / "copy.txt").write_bytes(content)
    beta.run("area", "add", AREA, str(beta_area))
    beta.run("peer", "add", "alpha", victim.peer_id)  # alpha dials beta
    victim.run("peer", "add", "beta", beta.peer_id, "--address", beta.listen_address)
    beta.up()
    wait_for(lambda: _indexed(beta, "copy.txt"), "beta to index its file")
    wait_for(lambda: "beta" in _traffic(victim), "alpha and beta to connect")

    serve_history(victim.fake, [event("note.txt", content)], {digest: content})
    victim.fake.answers["chunks"] = lambda args: [b"X" * len(content) for _ in args["hashes"]]
    result = consensus(victim)
    assert result.returncode == 0, result.stderr
    assert (victim.area / "note.txt").read_bytes() == content


def _indexed(appliance, path: str) -> bool:
    with psycopg.connect(database_url(appliance.database)) as conn:
        query = "SELECT count(*) FROM areas_entry WHERE path = %s AND blob_hash IS NOT NULL"
        return conn.execute(query, [path]).fetchone()[0] == 1


def _traffic(appliance) -> dict:
    return json.loads(appliance.run("status", "--json").stdout).get("traffic") or {}


@pytest.mark.parametrize(
    "path",
    [
        "../escape.txt",
        "/etc/escape.txt",
        "a/../../escape.txt",
        "nul\x00.txt",
        "a//b",
        "x" * 300,
        "/".join(["d"] * 3000),
    ],
)
def test_a_path_leaving_the_area_is_refused(victim, path):
    content = b"payload\n"
    digest = blake3.blake3(content).digest()
    serve_history(victim.fake, [event(path, content)], {digest: content})
    result = consensus(victim)
    assert result.returncode != 0
    assert "refused path" in result.stderr
    assert files_under(victim.area) == []
    assert not (victim.area.parent / "escape.txt").exists()


def test_broken_frames_end_only_that_connection(victim):
    pids = victim.up_state()["programs"]
    victim.fake.misbehave(struct.pack(">I", 1 << 30) + b"nonsense")  # an oversized frame
    wait_for(lambda: "over the limit" in _peerd_log(victim), "alpha to drop the connection")

    # Raw junk at the listening port: dropped too.
    with socket.create_connection(("127.0.0.1", _listen_port(victim))) as junk:
        junk.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(4096))
        junk.settimeout(30)
        try:
            assert junk.recv(100) == b""
        except ConnectionResetError:
            pass

    # peerd is the same process, and still serves: a well-behaved peer gets its answers.
    assert victim.up_state()["programs"]["peerd"] == pids["peerd"]
    victim.fake.misbehave(None)
    content = b"fine\n"
    serve_history(
        victim.fake, [event("fine.txt", content)], {blake3.blake3(content).digest(): content}
    )
    wait_for(lambda: consensus(victim).returncode == 0, "a clean exchange after the bad one")
    assert (victim.area / "fine.txt").read_bytes() == content


def _peerd_log(appliance) -> str:
    return (appliance.home / "logs" / "peerd.log").read_text()


def _listen_port(appliance) -> int:
    import json

    local = json.loads(appliance.run("status", "--json").stdout)["local"]
    return int(local["listen_address"].rsplit(":", 1)[1])
