"""Which peers a read asks (fusemount.unreal.Chunks.connected): peerd's last answer, so that
a read never waits on peerd while it has one."""

import pytest

from fusemount.unreal import Chunks


class Peerd:
    def __init__(self, *answers):
        self.answers, self.asked = list(answers), 0

    def connected(self):
        self.asked += 1
        return self.answers.pop(0)


def chunks_asking(tmp_path, peerd) -> Chunks:
    chunks = Chunks(home=tmp_path, limit=1 << 20)
    chunks._local.client = peerd
    return chunks


def test_reads_use_the_last_answer_and_the_warm_loop_renews_it(tmp_path):
    peerd = Peerd(["alpha"], ["alpha", "gamma"])
    chunks = chunks_asking(tmp_path, peerd)
    assert chunks.connected() == ["alpha"] and chunks.connected() == ["alpha"]
    assert peerd.asked == 1
    assert chunks.refresh_connected() == ["alpha", "gamma"]
    assert chunks.connected() == ["alpha", "gamma"] and peerd.asked == 2


def test_none_connected_is_asked_again_each_time(tmp_path):
    peerd = Peerd([], [], ["alpha"])
    chunks = chunks_asking(tmp_path, peerd)
    assert chunks.connected() == [] and chunks.connected() == []
    assert chunks.connected() == ["alpha"] and peerd.asked == 3


def test_an_old_answer_is_asked_again(tmp_path, monkeypatch):
    peerd = Peerd(["alpha"], ["beta"])
    chunks = chunks_asking(tmp_path, peerd)
    assert chunks.connected() == ["alpha"]
    monkeypatch.setattr("fusemount.unreal.PEERS_STALE", 0.0)
    assert chunks.connected() == ["beta"] and peerd.asked == 2


def test_a_peer_that_cannot_be_reached_makes_the_next_read_ask_again(tmp_path):
    class Gone(Peerd):
        def request(self, peer, op, args, timeout):
            raise ConnectionRefusedError("not connected")

    peerd = Gone(["alpha"], [])
    chunks = chunks_asking(tmp_path, peerd)
    assert chunks.connected() == ["alpha"]
    with pytest.raises(ConnectionRefusedError):
        chunks._request("alpha", "holds", {"hashes": []})  # through peerd, which fails
    chunks._local.client = peerd  # the failure dropped the client, as a closed one is
    assert chunks.connected() == [] and peerd.asked == 2
