"""The chunk fetcher (areas.pull.fetch): chunks fetched ahead, handed out in any order, each
kept until its last use."""

import threading
from collections import Counter

import pytest

from areas.files import CorruptContent, chunk_hash
from areas.pull import ChunkFetcher, Unavailable, Wanted, batches, spans


def chunks(n: int, size: int = 1000) -> dict[bytes, bytes]:
    data = [bytes([i % 256]) * size + i.to_bytes(4, "big") for i in range(n)]
    return {chunk_hash(d): d for d in data}


def feed_of(store: dict[bytes, bytes], uses: Counter, served=None, batch_bytes=3000):
    asked: list[list[bytes]] = []

    def fetch_many(arg_list):
        for args in arg_list:
            asked.append(args["hashes"])
            yield [(served or store).get(h) for h in args["hashes"]]

    plan = [(h, len(store[h])) for h in store]
    feed = ChunkFetcher(plan, uses, fetch_many, batch_bytes, ahead_bytes=10_000).start()
    return feed, asked


def test_every_chunk_is_handed_out_and_one_used_twice_is_kept_for_its_second_use():
    store = chunks(20)
    first = next(iter(store))
    uses = Counter({h: 1 for h in store})
    uses[first] = 2
    feed, asked = feed_of(store, uses)
    try:
        for h in reversed(list(store)):  # the writers may ask out of order
            assert feed.take(h) == store[h]
        assert feed.take(first) == store[first]
        assert sum(len(b) for b in asked) == len(store)  # each fetched once
    finally:
        feed.close()


def test_a_chunk_the_peer_cannot_send_or_sends_wrong_fails_alone():
    store = chunks(6)
    keys = list(store)
    served = dict(store)
    served[keys[1]] = None
    served[keys[2]] = b"tampered"
    feed, _ = feed_of(store, Counter({h: 1 for h in store}), served=served)
    try:
        with pytest.raises(Unavailable):
            feed.take(keys[1])
        with pytest.raises(CorruptContent):
            feed.take(keys[2])
        for h in keys[3:]:
            assert feed.take(h) == store[h]
    finally:
        feed.close()


def test_when_fetching_fails_every_waiting_writer_is_told():
    store = chunks(4)

    def fetch_many(arg_list):
        raise ConnectionResetError("peerd went away")
        yield  # pragma: no cover

    plan = [(h, len(d)) for h, d in store.items()]
    feed = ChunkFetcher(plan, Counter({h: 1 for h in store}), fetch_many, 3000, 10_000).start()
    try:
        with pytest.raises(Unavailable, match="peerd went away"):
            feed.take(next(iter(store)))
    finally:
        feed.close()


def test_batches_stay_within_their_size():
    plan = [Wanted(bytes([i]) * 32, 1000) for i in range(10)]
    sizes = [len(b) for b in batches(plan, 2500)]
    assert sizes == [3, 3, 3, 1]


def test_neighbouring_chunks_of_a_blob_are_asked_for_as_one_range():
    a, b = b"a" * 32, b"b" * 32
    batch = [
        Wanted(b"1" * 32, 10, a, 0),
        Wanted(b"2" * 32, 20, a, 10),
        Wanted(b"3" * 32, 5, a, 100),  # not next to the one before
        Wanted(b"4" * 32, 7, b, 105),  # another blob
    ]
    assert [(blob, offset, length, len(items)) for blob, offset, length, items in spans(batch)] == [
        (a, 0, 30, 2),
        (a, 100, 5, 1),
        (b, 105, 7, 1),
    ]


def blob_of(store: dict[bytes, bytes]) -> tuple[bytes, list[Wanted]]:
    """The chunks of `store` laid end to end as one blob: its content and its plan."""
    content, plan = b"", []
    for h, data in store.items():
        plan.append(Wanted(h, len(data), b"B" * 32, len(content)))
        content += data
    return content, plan


def test_ranges_are_checked_chunk_by_chunk_and_what_was_not_given_is_asked_by_hash():
    store = chunks(12)
    content, plan = blob_of(store)
    keys = list(store)
    tampered = plan[5].offset
    served_content = content[:tampered] + b"X" + content[tampered + 1 :]
    asked = []

    def fetch_many(arg_list):
        for args in arg_list:
            if "ranges" in args:
                asked.append(("ranges", len(args["ranges"])))
                answer = []
                for _blob, offset, length in args["ranges"]:
                    # The peer's file changed under the first range: it does not give it.
                    answer.append(None if offset == 0 else served_content[offset : offset + length])
                yield answer
            else:
                asked.append(("hashes", len(args["hashes"])))
                yield [store[h] for h in args["hashes"]]

    feed = ChunkFetcher(plan, Counter(keys), fetch_many, 3000, 100_000).start()
    try:
        for i, h in enumerate(keys):
            if i == 5:
                with pytest.raises(CorruptContent):
                    feed.take(h)
            else:
                assert feed.take(h) == store[h]
        # The first range's three chunks came by hash, once.
        assert sum(n for kind, n in asked if kind == "hashes") == 3
    finally:
        feed.close()


def test_pieces_of_a_larger_blob_are_checked_only_for_a_writer_that_asks():
    store = chunks(6)
    content, plan = blob_of(store)
    keys = list(store)
    tampered = plan[2].offset
    served = content[:tampered] + b"X" + content[tampered + 1 :]

    def fetch_many(arg_list):
        for args in arg_list:
            yield [served[offset : offset + length] for _blob, offset, length in args["ranges"]]

    uses = Counter({h: 1 for h in keys})
    uses[keys[2]] = 2
    feed = ChunkFetcher(plan, uses, fetch_many, 3000, 100_000).start()
    try:
        # A writer hashing the whole file itself takes the pieces as they came...
        assert feed.take(keys[2], checked=False) == served[tampered : tampered + plan[2].length]
        assert feed.take(keys[1], checked=False) == store[keys[1]]
        # ...one that does not gets each checked: the wrong one is refused.
        with pytest.raises(CorruptContent):
            feed.take(keys[2])
        assert feed.take(keys[3]) == store[keys[3]]
    finally:
        feed.close()


def test_a_feed_after_another_fetches_nothing_until_the_other_has_fetched_all():
    earlier, later = chunks(4), chunks(3, size=700)
    gate = threading.Event()
    order: list[str] = []

    def fetch_many_of(name, store, wait):
        def fetch_many(arg_list):
            for args in arg_list:
                if wait:
                    gate.wait(10)
                order.append(name)
                yield [store.get(h) for h in args["hashes"]]

        return fetch_many

    def plan(store):
        return [(h, len(store[h])) for h in store]

    first = ChunkFetcher(
        plan(earlier),
        Counter(dict.fromkeys(earlier, 1)),
        fetch_many_of("first", earlier, wait=True),
        10_000,
        100_000,
    ).start()
    second = ChunkFetcher(
        plan(later), Counter(dict.fromkeys(later, 1)),
        fetch_many_of("second", later, wait=False), 10_000, 100_000, after=first,
    ).start()  # fmt: skip
    try:
        assert not second.wait_finished(0.3) and order == []  # the first is still fetching
        gate.set()
        for h in later:
            assert second.take(h) == later[h]
        assert order == ["first", "second"]
        for h in earlier:
            assert first.take(h) == earlier[h]
    finally:
        second.close()
        first.close()
