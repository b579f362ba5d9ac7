import os

import pytest

from peers.identity import peer_id


def keys(n: int = 20) -> list[bytes]:
    return [bytes(32), bytes([255] * 32)] + [os.urandom(32) for _ in range(n)]


@pytest.mark.parametrize("key", keys())
def test_round_trip(key):
    text = peer_id.encode(key)
    assert len(text) == 63 and text.count("-") == 7
    assert all(len(group) == 7 for group in text.split("-"))
    assert peer_id.decode(text) == key


def test_reading_is_forgiving_about_case_spaces_and_dashes():
    key = os.urandom(32)
    text = peer_id.encode(key)
    assert peer_id.decode(text.lower()) == key
    assert peer_id.decode(text.replace("-", "")) == key
    assert peer_id.decode(" ".join(text.split("-"))) == key


def test_confusable_digits_are_read_as_letters():
    key = next(k for k in iter(lambda: os.urandom(32), None) if "O" in peer_id.encode(k))
    text = peer_id.encode(key)
    assert peer_id.decode(text.replace("O", "0")) == key


@pytest.mark.parametrize("key", keys(5))
def test_every_single_mistyped_character_is_caught(key):
    chars = peer_id.encode(key).replace("-", "")
    for position in range(len(chars)):
        for typo in peer_id.ALPHABET:
            if typo == chars[position]:
                continue
            mistyped = chars[:position] + typo + chars[position + 1 :]
            with pytest.raises(peer_id.BadPeerId):
                peer_id.decode(mistyped)


def test_most_swaps_of_neighbours_are_caught():
    caught = total = 0
    for key in keys(20):
        chars = peer_id.encode(key).replace("-", "")
        for i in range(len(chars) - 1):
            if chars[i] == chars[i + 1]:
                continue
            swapped = chars[:i] + chars[i + 1] + chars[i] + chars[i + 2 :]
            total += 1
            try:
                peer_id.decode(swapped)
            except peer_id.BadPeerId:
                caught += 1
    assert caught / total > 0.9


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "56 characters"),
        ("ABC", "56 characters"),
        ("!" * 56, "has no '!'"),
    ],
)
def test_malformed_ids_say_what_is_wrong(text, why):
    with pytest.raises(peer_id.BadPeerId, match=why):
        peer_id.decode(text)
