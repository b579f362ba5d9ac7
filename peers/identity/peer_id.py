"""Peer ids: a peer's Ed25519 public key written so that a person can read it aloud.

The 32-byte key is written in base32 (52 characters), cut into four runs of 13, and each run
gets a Luhn mod 32 check character; the 56 characters are shown in eight groups of seven:

    MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWGD

Any one mistyped character changes a run's check character, so it is caught, as are most
swaps of two neighbouring characters. Reading is forgiving: case, spaces and dashes do not
matter, and 0, 1 and 8 are read as O, I and B, which base32 does not use.
"""

import base64

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
KEY_BYTES = 32
RUN = 13
GROUP = 7
_CONFUSABLE = str.maketrans({"0": "O", "1": "I", "8": "B"})


class BadPeerId(ValueError):
    pass


def luhn32(run: str) -> str:
    """The Luhn mod N check character (N = 32) of a base32 run."""
    factor, total = 2, 0
    for char in reversed(run):
        addend = factor * ALPHABET.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return ALPHABET[(32 - total % 32) % 32]


def encode(public_key: bytes) -> str:
    if len(public_key) != KEY_BYTES:
        raise ValueError("a peer key is 32 bytes")
    plain = base64.b32encode(public_key).decode().rstrip("=")
    runs = [plain[i : i + RUN] for i in range(0, len(plain), RUN)]
    checked = "".join(run + luhn32(run) for run in runs)
    return "-".join(checked[i : i + GROUP] for i in range(0, len(checked), GROUP))


def normalize(text: str) -> str:
    return "".join(text.split()).replace("-", "").upper().translate(_CONFUSABLE)


def decode(text: str) -> bytes:
    """The public key written in `text`, or BadPeerId saying what is wrong with it."""
    chars = normalize(text)
    if len(chars) != 4 * (RUN + 1):
        raise BadPeerId(f"a peer id has 56 characters, this one has {len(chars)}")
    wrong = sorted({c for c in chars if c not in ALPHABET})
    if wrong:
        raise BadPeerId(f"a peer id has no {', '.join(repr(c) for c in wrong)}")
    runs = []
    for number, start in enumerate(range(0, len(chars), RUN + 1), start=1):
        run, check = chars[start : start + RUN], chars[start + RUN]
        if luhn32(run) != check:
            group = (start + RUN) // GROUP + 1
            raise BadPeerId(
                f"check character {number} of the peer id (in group {group}) does not match: "
                "a character is mistyped"
            )
        runs.append(run)
    plain = "".join(runs)
    key = base64.b32decode(plain + "=" * (-len(plain) % 8))
    if encode(key).replace("-", "") != chars:
        raise BadPeerId("the peer id does not encode a 32-byte key")
    return key
