"""The instance's home directory (REALIZE_HOME): keys, secrets, sockets, logs, caches."""

import os
import secrets
from pathlib import Path

# peerd's Unix socket, in REALIZE_HOME (named here, where the command line finds it without
# starting Django).
PEERD_SOCKET = "peerd.sock"
# What `realize up` runs now (its supervisor writes it): peerd's clients wait for a restart.
UP_STATE = "run/up.json"


def realize_home() -> Path:
    home = Path(os.environ.get("REALIZE_HOME") or Path.home() / ".realize").expanduser()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home.resolve()


def peerd_socket(home: Path) -> Path:
    return home / PEERD_SOCKET


def up_state_file(home: Path) -> Path:
    return home / UP_STATE


def write_private_file(path: Path, data: bytes) -> bool:
    """Create `path` with mode 0600 holding `data`, unless it exists. True if created.

    Written under a temporary name and linked into place, so a reader never sees a partial
    file and two processes racing to create it agree on one content.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        created = True
    except FileExistsError:
        created = False
    finally:
        os.unlink(tmp)
    if created:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return created


def secret_key(home: Path) -> str:
    path = home / "secret_key"
    if not path.exists():
        write_private_file(path, secrets.token_urlsafe(50).encode())
    return path.read_text().strip()
