"""Buffers pooled for the chunks served (peers.wire.buffers): one is taken again only once
nothing refers to it, and those nobody took for a while are let go."""

from peers.wire import BufferPool


def test_a_pooled_buffer_is_reused_only_once_nothing_refers_to_it():
    pool = BufferPool()
    first = pool.take(300_000)
    first[:3] = b"abc"
    second = pool.take(300_000)
    assert second.obj is not first.obj  # the first is still in use
    kept = first[:3]
    del first
    third = pool.take(300_000)
    assert third.obj is not kept.obj  # a slice of it is still held
    assert bytes(kept) == b"abc"
    del kept, second
    fourth = pool.take(200_000)
    assert len(fourth) == 200_000
    assert len(pool._buffers) == 3  # a free one was taken again, none made


def test_a_pool_lets_go_of_buffers_nobody_took_for_a_while():
    pool = BufferPool(idle_seconds=0.0)
    first = pool.take(300_000)
    del first
    second = pool.take(300_000)  # the first is free: taken again, nothing let go
    assert len(pool._buffers) == 1
    third = pool.take(300_000)  # none free: a new one is made, the idle ones let go first
    assert len(pool._buffers) == 1 and third.obj is not second.obj
