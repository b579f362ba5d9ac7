"""Frames: a Parts result travels after the message and comes back as views of the frame;
a frame whose parts do not add up is refused."""

import io
import os

import msgpack
import pytest

from peers.wire import (
    HEADER,
    JOIN_BELOW,
    JOINED_BYTES,
    MAX_FRAME,
    Parts,
    ProtocolError,
    coalesced,
    frame,
    pack,
    read_stream_frame,
    reply_id,
    unpack,
    unpack_relayed,
)


def body(pieces: list) -> bytes:
    return b"".join(bytes(p) for p in pieces)[4:]  # without the length header


def test_parts_come_back_as_they_were_sent():
    big = os.urandom(300_000)
    data = body(frame({"re": 7, "ok": True, "result": Parts([b"abc", None, b"", big])}))
    message = unpack(data)
    assert message["re"] == 7 and message["ok"] is True and "parts" not in message
    assert [None if p is None else bytes(p) for p in message["result"]] == [b"abc", None, b"", big]
    assert isinstance(message["result"][3], memoryview)  # not copied out of the frame
    assert reply_id(data) == 7


def test_a_relayed_answer_with_parts_is_read_after_peerds_header():
    peer_answer = body(frame({"re": 3, "ok": True, "result": Parts([b"x" * 10, b"y"])}))
    local = bytearray(body(frame({"re": 99, "relayed": True}, peer_answer)))
    header, answer = unpack_relayed(local)
    assert header["re"] == 99
    assert [bytes(p) for p in answer["result"]] == [b"x" * 10, b"y"]


@pytest.mark.parametrize(
    "data",
    [
        msgpack.packb({"re": 1, "ok": True, "parts": [5]}) + b"1234",  # one byte short
        msgpack.packb({"re": 1, "ok": True, "parts": [2]}) + b"1234",  # two too many
        msgpack.packb({"re": 1, "ok": True, "parts": [-2, 4]}) + b"1234",
        msgpack.packb({"re": 1, "ok": True, "parts": "four"}) + b"1234",
        msgpack.packb({"re": 1, "ok": True}) + b"junk after the message",
        msgpack.packb([1, 2, 3]),
        b"\xc1",
    ],
)
def test_frames_that_do_not_add_up_are_refused(data):
    with pytest.raises(ProtocolError):
        unpack(data)


def test_a_message_longer_than_the_first_read_is_decoded():
    message = {"id": 1, "op": "chunks", "args": {"hashes": [os.urandom(32)] * 4000}}
    assert unpack(pack(message)[4:]) == message


def test_small_pieces_of_a_frame_are_joined_and_large_ones_sent_as_they_are():
    small = [os.urandom(2000) for _ in range(500)]  # 1 MB of small files' contents
    big = os.urandom(3_000_000)
    pieces = frame({"re": 1, "ok": True, "result": Parts([*small, big, b"tail"])})
    written = coalesced(pieces)
    assert b"".join(bytes(p) for p in written) == b"".join(bytes(p) for p in pieces)
    # The header, the message and 500 parts: a handful of writes, none over the cap
    # unless it is a large piece of its own, which is not copied.
    assert len(written) <= 8
    assert any(p is big for p in written)
    assert all(len(p) < JOINED_BYTES + JOIN_BELOW for p in written if p is not big)
    assert unpack(b"".join(bytes(p) for p in written)[4:])["result"][-1] == b"tail"


def test_a_frame_of_large_pieces_is_not_copied():
    parts = [os.urandom(JOIN_BELOW), os.urandom(JOIN_BELOW * 2)]
    written = coalesced(frame({"re": 2, "ok": True, "result": Parts(parts)}))
    assert written[-2] is parts[0] and written[-1] is parts[1]


def test_frames_are_read_back_from_a_stream_until_it_ends_or_breaks():
    stream = io.BytesIO(pack({"a": 1}) + pack({"b": b"x" * 70000}) + pack({"c": 3})[:-1])
    assert read_stream_frame(stream) == {"a": 1}
    assert bytes(read_stream_frame(stream)["b"]) == b"x" * 70000
    assert read_stream_frame(stream) is None  # cut short
    assert read_stream_frame(io.BytesIO(HEADER.pack(MAX_FRAME + 1) + b"y" * 10)) is None
    assert read_stream_frame(io.BytesIO(b"")) is None
