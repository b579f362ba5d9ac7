"""Several real appliances that know each other and share one area, all running."""

import hashlib
import os
import re
from pathlib import Path

import psycopg

from tests.appliance import Appliance, database_url, free_port

AREA = "docs"


class Member(Appliance):
    def __init__(self, root: Path, name: str, deaf: bool = False):
        super().__init__(root, name)
        self.port = None if deaf else free_port()
        self.dir = root / f"area-{name}"
        self.dir.mkdir()

    @property
    def listen(self) -> str | None:
        return f"127.0.0.1:{self.port}" if self.port else None

    def consensus(self, other: "Member", check: bool = True):
        return self.run("consensus", AREA, "--peer", other.name, check=check, timeout=600)

    def sql(self, query: str, *params):
        with psycopg.connect(database_url(self.database)) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


def make_household(
    root: Path, names: list[str], deaf: set[str] = frozenset(), unreal: set[str] = frozenset()
) -> list[Member]:
    """`unreal`: the members whose area is Unreal (its content fetched when read)."""
    members = [Member(root, name, deaf=name in deaf) for name in names]
    for m in members:
        m.init(m.listen)
    for m in members:
        for other in members:
            if other is not m:
                args = ["peer", "add", other.name, other.peer_id]
                if other.listen:
                    args += ["--address", other.listen]
                m.run(*args)
        mode = "unreal" if m.name in unreal else "real"
        m.run("area", "add", AREA, str(m.dir), "--mode", mode)
    for m in members:
        m.up()
    return members


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under root: content digest and permission bits."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            found[path.relative_to(root).as_posix()] = (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                path.stat().st_mode & 0o7777,
            )
    return found


def mtimes(root: Path) -> dict[str, int]:
    return {
        Path(d, n).relative_to(root).as_posix(): Path(d, n).stat().st_mtime_ns
        for d, _dirs, files in os.walk(root)
        for n in files
    }


def transferred(output: str) -> tuple[int, int]:
    """(bytes received, bytes sent) from `realize consensus` output."""
    received = re.search(r"received \d+ files \((\d+) bytes\)", output)
    sent = re.search(r"sent \d+ files \((\d+) bytes\)", output)
    return int(received.group(1)), int(sent.group(1))
