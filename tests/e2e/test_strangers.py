"""Only the household's keys get in: an unknown key is refused on both sides, recorded with
its peer id, and receives nothing."""

import os

from peers.identity import peer_id
from tests.appliance import wait_for
from tests.household import Member


def strangers(member: Member) -> dict[str, tuple[str, str]]:
    rows = member.sql("SELECT public_key, direction, address FROM peers_stranger")
    return {peer_id.encode(bytes(key)): (direction, address) for key, direction, address in rows}


def setup(tmp_path):
    alpha, beta = Member(tmp_path, "alpha"), Member(tmp_path, "beta")
    for m in (alpha, beta):
        m.init(m.listen)
        m.run("area", "add", "docs", str(m.dir))
    return alpha, beta


def test_an_unknown_key_is_refused_on_both_sides(tmp_path):
    alpha, beta = setup(tmp_path)
    try:
        (beta.dir / "secret.txt").write_bytes(b"for the household only\n")
        # alpha expects some other key at beta's address; beta does not know alpha at all.
        impostor_id = peer_id.encode(os.urandom(32))
        alpha.run("peer", "add", "beta", impostor_id, "--address", beta.listen)
        alpha.up()
        beta.up()

        # alpha, dialing, refuses beta's key, and records the key it met there ...
        wait_for(lambda: beta.peer_id in strangers(alpha), "alpha to record beta's key")
        assert strangers(alpha)[beta.peer_id] == ("outgoing", beta.listen)
        # ... and beta, dialed by an unknown key, refuses it and records it.
        wait_for(lambda: alpha.peer_id in strangers(beta), "beta to record alpha's key")
        assert strangers(beta)[alpha.peer_id][0] == "incoming"

        refused = alpha.run("consensus", "docs", "--peer", "beta", check=False)
        assert refused.returncode != 0 and "not connected" in refused.stderr
        assert list(alpha.dir.iterdir()) == []

        # Adding the stranger's real id, as the dashboard offers, lets it in.
        alpha.run("peer", "remove", "beta")
        alpha.run("peer", "add", "beta", beta.peer_id, "--address", beta.listen)
        beta.run("peer", "add", "alpha", alpha.peer_id, "--address", alpha.listen)
        assert beta.peer_id not in strangers(alpha)
        alpha.run("consensus", "docs", "--peer", "beta")
        assert (alpha.dir / "secret.txt").read_bytes() == b"for the household only\n"
    finally:
        alpha.destroy()
        beta.destroy()
