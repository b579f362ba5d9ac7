import os

import pytest

from peers.identity import peer_id


def some_id() -> str:
    return peer_id.encode(os.urandom(32))


def assert_one_line_error(result, *words):
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("realize: error: ")
    for word in words:
        assert word in lines[0]


@pytest.fixture
def alpha(appliances):
    return appliances("alpha", listen="127.0.0.1:7001")


def test_add_list_remove(alpha):
    beta, gamma = some_id(), some_id()
    assert (
        "listening at 127.0.0.1:7002"
        in alpha.run("peer", "add", "beta", beta, "--address", "127.0.0.1:7002").stdout
    )
    assert "deaf" in alpha.run("peer", "add", "gamma", gamma.lower().replace("-", "")).stdout

    listing = alpha.run("peer", "list").stdout.splitlines()
    assert listing[0].split() == ["beta", beta, "127.0.0.1:7002"]
    assert listing[1].split() == ["gamma", gamma, "(deaf)"]

    alpha.run("peer", "remove", "beta")
    assert [line.split()[0] for line in alpha.run("peer", "list").stdout.splitlines()] == ["gamma"]


def test_addresses_are_host_port(alpha):
    alpha.run("peer", "add", "v6", some_id(), "--address", "[::1]:7002")
    alpha.run("peer", "add", "named", some_id(), "--address", "nas.local:22000")
    assert "[::1]:7002" in alpha.run("peer", "list").stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["beta", "NOT-AN-ID"], ["bad peer id"]),
        (["beta", "mistyped"], ["check character", "mistyped"]),
        (["bad name!", "good"], ["not a valid peer name"]),
        (["beta", "good", "--address", "127.0.0.1"], ["bad address", "HOST:PORT"]),
        (["beta", "good", "--address", "127.0.0.1:0"], ["bad address", "port"]),
        (["beta", "good", "--address", "127.0.0.1:70000"], ["bad address", "port"]),
        (["beta", "good", "--address", "300.1.1.1:7000"], ["bad address"]),
        (["beta", "good", "--address", "[nonsense]:7000"], ["bad address", "IPv6"]),
        (["beta", "good", "--address", "a b:7000"], ["bad address"]),
    ],
)
def test_bad_input_is_one_line_and_saves_nothing(alpha, args, words):
    good = some_id()
    chars = good.replace("-", "")
    mistyped = chars[:10] + ("A" if chars[10] != "A" else "B") + chars[11:]
    args = [{"good": good, "mistyped": mistyped}.get(a, a) for a in args]
    assert_one_line_error(alpha.run("peer", "add", *args, check=False), *words)
    assert "No peers yet" in alpha.run("peer", "list").stdout


def test_duplicate_name_or_key_is_refused(alpha):
    first = some_id()
    alpha.run("peer", "add", "beta", first)
    assert_one_line_error(
        alpha.run("peer", "add", "beta", some_id(), check=False), "already", "beta"
    )
    assert_one_line_error(alpha.run("peer", "add", "other", first, check=False), "already", "beta")
    assert len(alpha.run("peer", "list").stdout.splitlines()) == 1


def test_own_id_is_refused(alpha):
    assert_one_line_error(alpha.run("peer", "add", "me", alpha.peer_id, check=False), "own")


def test_removing_an_unknown_peer(alpha):
    assert_one_line_error(alpha.run("peer", "remove", "nobody", check=False), "no peer named")


def test_database_out_of_reach_is_one_line(alpha):
    alpha.env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    assert_one_line_error(alpha.run("peer", "list", check=False), "database")
