"""The stager (areas.stager.process): large new files fetched and staged by a process of its own,
checked before the worker may use them; anything it cannot do, the worker does itself."""

import os
import queue
import stat
import threading
from concurrent.futures import Future

import blake3
import pytest

from areas.files import ChunkRef, Staged
from areas.pull import sourcing
from areas.stager import NotStaged, process
from peers.wire import HEADER, pack, unpack

MiB = 1024 * 1024
PEER = ("127.0.0.1:1", b"k" * 32, "beta", 5.0, "alpha")


class FakeLink:
    """Answers requests for ranges of one blob from `content` (changed by `tamper`)."""

    closed = False

    def __init__(self, content: bytes, tamper=None):
        self.content, self.tamper = content, tamper
        self.sock = self
        self.requests: list[dict] = []

    def sendall(self, data: bytes) -> None:
        self.requests.append(unpack(memoryview(data)[HEADER.size :]))

    def send(self, message: dict) -> None:
        self.sendall(pack(message))

    def receive(self) -> dict:
        request = self.requests.pop(0)
        parts = [self.content[o : o + n] for _, o, n in request["args"]["ranges"]]
        if self.tamper:
            parts = [self.tamper(p) for p in parts]
        return {"re": request["id"], "ok": True, "result": parts}

    def close(self) -> None:
        self.closed = True


def job(tmp_path, content: bytes, n: int = 1, chunk: int = 64 * 1024) -> dict:
    chunks = [[o, min(chunk, len(content) - o)] for o in range(0, len(content), chunk)]
    return {
        "job": {
            "id": n,
            "address": PEER[0],
            "key": PEER[1],
            "name": PEER[2],
            "timeout": PEER[3],
            "peer": PEER[4],
            "tmp": str(tmp_path / f".realize-tmp-{n}"),
            "blob": blake3.blake3(content).digest(),
            "size": len(content),
            "chunks": chunks,
            "mtime_ns": 1_700_000_000_123_456_789,
            "mode": 0o640,
        }
    }


def dial(monkeypatch, link: FakeLink) -> None:
    def _link(self, peer):
        self.link, self.link_for = link, peer
        return link

    monkeypatch.setattr(process.Stager, "_link", _link)


def run(messages: list, link: FakeLink, monkeypatch) -> list[dict]:
    """The stager given these messages, then its input closed: its replies."""
    dial(monkeypatch, link)
    inbox: queue.Queue = queue.Queue()
    for message in messages:
        inbox.put(message)
    replies: list[dict] = []
    lock = threading.Lock()

    def reply(message):
        with lock:
            replies.append(message)

    s = process.Stager(inbox, reply)
    # Input closed only once every job is answered: closing it means the worker is gone.
    answered = threading.Thread(target=s.run)
    answered.start()
    wanted = {m["job"]["id"] for m in messages if "job" in m}
    while answered.is_alive():
        with lock:
            if {r.get("id") for r in replies} >= wanted:
                break
        answered.join(0.01)
    inbox.put(None)
    answered.join()
    # The stager's traffic, told after each answer, is the worker's to count.
    assert all("traffic" in r for r in replies if "id" not in r)
    return [r for r in replies if "id" in r]


def test_ranges_are_asked_a_batch_at_a_time():
    chunks = [(0, 3 * MiB), (3 * MiB, 2 * MiB), (5 * MiB, MiB), (7 * MiB, MiB)]
    # Neighbouring chunks make one range; a batch ends once it holds BATCH_BYTES.
    assert process.batches_of(chunks) == [[(0, 5 * MiB)], [(5 * MiB, MiB), (7 * MiB, MiB)]]


def test_a_file_is_staged_checked_and_given_its_mode_and_time(tmp_path, monkeypatch):
    content = os.urandom(9 * MiB + 12345)  # more than one batch, and than one direct write
    replies = run([job(tmp_path, content)], FakeLink(content), monkeypatch)
    assert replies == [
        {"id": 1, "ok": True, "device": os.stat(tmp_path).st_dev, "bytes": len(content)}
    ]
    staged = tmp_path / ".realize-tmp-1"
    assert staged.read_bytes() == content
    st = staged.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_mtime_ns == 1_700_000_000_123_456_789


def test_content_sent_wrong_is_refused_and_removed(tmp_path, monkeypatch):
    content = os.urandom(3 * MiB)

    def flip(part):
        return bytes([part[0] ^ 1]) + part[1:]

    replies = run([job(tmp_path, content)], FakeLink(content, tamper=flip), monkeypatch)
    assert [(r["ok"], r["kind"]) for r in replies] == [(False, "corrupt")]
    assert "does not match" in replies[0]["error"]
    assert list(tmp_path.iterdir()) == []


def test_a_range_the_peer_cannot_send_fails_that_file_only(tmp_path, monkeypatch):
    first, second = os.urandom(2 * MiB), os.urandom(2 * MiB)
    link = FakeLink(first)
    jobs = [job(tmp_path, first, 1), job(tmp_path, second, 2)]
    jobs[1]["job"]["chunks"] = [[0, len(second) + 1]]  # beyond what the peer has
    replies = {r["id"]: r for r in run(jobs, link, monkeypatch)}
    assert replies[1]["ok"] and not replies[2]["ok"]
    assert [p.name for p in tmp_path.iterdir()] == [".realize-tmp-1"]


def test_when_the_link_breaks_every_file_is_left_to_the_worker(tmp_path, monkeypatch):
    contents = [os.urandom(5 * MiB), os.urandom(2 * MiB), os.urandom(2 * MiB)]

    class Breaks(FakeLink):
        def sendall(self, data):
            if len(self.requests) >= 2:
                raise ConnectionResetError("the peer closed the connection")
            super().sendall(data)

    jobs = [job(tmp_path, content, n + 1) for n, content in enumerate(contents)]
    replies = run(jobs, Breaks(contents[0]), monkeypatch)
    assert sorted(r["id"] for r in replies) == [1, 2, 3]
    assert not any(r["ok"] for r in replies)
    assert all("no data link" in r["error"] for r in replies)
    assert list(tmp_path.iterdir()) == []


def test_a_cancelled_file_is_not_started(tmp_path, monkeypatch):
    content = os.urandom(2 * MiB)
    replies = run([{"cancel": 1}, job(tmp_path, content)], FakeLink(content), monkeypatch)
    assert replies == [{"id": 1, "ok": False, "cancelled": True}]
    assert list(tmp_path.iterdir()) == []


def test_when_the_worker_is_gone_files_in_progress_are_removed(tmp_path, monkeypatch):
    content = os.urandom(6 * MiB)
    inbox: queue.Queue = queue.Queue()
    replies: list[dict] = []

    class Gone(FakeLink):
        def receive(self):
            inbox.put(None)  # the worker died while the answer was on its way
            return super().receive()

    link = Gone(content)
    dial(monkeypatch, link)
    inbox.put(job(tmp_path, content))
    process.Stager(inbox, replies.append).run()
    assert [(r["ok"], r["error"]) for r in replies if "id" in r] == [(False, "the worker stopped")]
    assert list(tmp_path.iterdir()) == []


def test_a_file_the_stager_did_not_stage_is_staged_by_the_worker(tmp_path, monkeypatch):
    made = []

    def stage_file(*args):
        made.append(args)
        return Staged(str(tmp_path / "tmp"), args[0], 1)

    monkeypatch.setattr(sourcing, "stage_file", stage_file)
    failed: Future = Future()
    failed.set_exception(NotStaged("the peer could not send a range of it"))
    stats = sourcing.ApplyStats()
    args = (str(tmp_path / "file"), b"h" * 32, [ChunkRef(b"h" * 32, 0, 5)], None, 0, 0o644, None)
    routed = sourcing.Routed(failed, args, stats)
    assert routed.result() == Staged(str(tmp_path / "tmp"), str(tmp_path / "file"), 1)
    assert routed.result() is routed.result() and len(made) == 1  # written once
    assert stats.bytes == 0  # the worker's own fetching counts what it fetched

    done: Future = Future()
    done.set_result((Staged("t", "elsewhere", 7), 12345))
    placed = sourcing.Routed(done, args, stats).result()
    assert placed == Staged("t", str(tmp_path / "file"), 7)  # placed where the change says
    assert stats.bytes == 12345


@pytest.mark.parametrize("size", [0, 1])
def test_tiny_or_empty_batches_are_none(size):
    assert process.batches_of([(0, size)] if size else []) == ([[(0, 1)]] if size else [])
