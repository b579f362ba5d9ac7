"""Real appliances for tests and benchmarks: each with its own home, database and Redis db.

An `Appliance` runs the `realize` command line as a subprocess, exactly as a person or another
tool would, and can start `realize up` and stop it.
"""

import atexit
import ctypes
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

REALIZE = str(Path(sys.executable).with_name("realize"))
REDIS_BASE = os.environ.get("REALIZE_TEST_REDIS", "redis://127.0.0.1:6379")
DATABASE_BASE = os.environ.get("DATABASE_URL", "postgresql:///realize")
# Redis databases 1-14 go to subprocess appliances (15 is the test process's own). Sharing one
# is harmless: each instance's queue and event groups are named after its home.
_redis_dbs = itertools.cycle(range(1, 15))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what: str, limit: float = 60.0, every: float = 0.2):
    """Poll until predicate() is truthy; a hang guard, not a speed assertion."""
    deadline = time.monotonic() + limit
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


class Appliance:
    def __init__(self, root: Path, name: str, database: str | None = None):
        self.name = name
        self.home = root / f"home-{name}"
        self.database = database or f"realize_t_{name}_{secrets.token_hex(4)}"
        self.redis_db = next(_redis_dbs)
        self.env = {
            **os.environ,
            "REALIZE_HOME": str(self.home),
            "DATABASE_URL": database_url(self.database),
            "REDIS_URL": f"{REDIS_BASE}/{self.redis_db}",
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.up_process: subprocess.Popen | None = None
        self.admin_password: str | None = None
        self.web_port: int | None = None

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [REALIZE, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            command = " ".join(args)
            raise AssertionError(
                f"realize {command} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def init(self, listen: str | None = None) -> "Appliance":
        self.listen_address = listen
        args = ["init", "--name", self.name]
        if listen:
            args += ["--listen", listen]
        output = self.run(*args).stdout
        for line in output.splitlines():
            if line.startswith("Web login: "):
                self.admin_password = line.split()[4]
        return self

    @property
    def peer_id(self) -> str:
        return self.run("id").stdout.strip()

    def up(self, *extra: str) -> "Appliance":
        """`extra` may hold `--mount DIR`; without it, the appliance runs without a mount."""
        self.web_port = free_port()
        self.up_log = open(self.home / "up.out", "w")
        mount = [] if "--mount" in extra else ["--no-mount"]
        self.up_process = subprocess.Popen(
            [REALIZE, "up", "--web", f"127.0.0.1:{self.web_port}", *mount, *extra],
            env=self.env,
            stdout=self.up_log,
            stderr=subprocess.STDOUT,
            preexec_fn=stop_with_parent,
        )
        wait_for(self._serving, f"{self.name}'s web pages")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _serving(self) -> bool:
        if self.up_process.poll() is not None:
            raise AssertionError(f"realize up exited: {(self.home / 'up.out').read_text()}")
        try:
            with urllib.request.urlopen(self.url + "/login/", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def up_state(self) -> dict | None:
        try:
            return json.loads((self.home / "run" / "up.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.up_process is None:
            return 0
        self.up_process.send_signal(sig)
        code = self.up_process.wait(timeout=60)
        self.up_process = None
        self.up_log.close()
        return code

    def destroy(self) -> None:
        if self.up_process is not None:
            self.stop()
        drop_database(self.database)


def stop_with_parent() -> None:
    """In a child process: if the process that started it dies, the child gets SIGTERM
    (appliances then stop their programs; the benchmark's Syncthings stop too)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Redis:
    """A redis-server of the test's own on a free port, saving to disk as a packaged one
    does, so a clean restart keeps what was queued."""

    def __init__(self, root: Path):
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.log = open(self.dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "60 1", "--appendonly", "no",
                "--daemonize", "no",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=stop_with_parent,
        )  # fmt: skip
        wait_for(self._ping, "redis-server to answer", limit=30)

    def stop(self) -> None:
        """As `systemctl stop` does: SIGTERM; the server saves its data and exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)
            self.process = None
            self.log.close()

    def destroy(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
            self.log.close()


def create_database(name: str) -> None:
    """Create `name` as a copy of a migrated template: `realize init` then finds the schema
    in place, which saves each test appliance a full migration."""
    global _template
    if _template is None:
        template = f"realize_t_template_{os.getpid()}"
        _create(template)
        env = {**os.environ, "DATABASE_URL": database_url(template)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        subprocess.run(
            [sys.executable, str(Path(__file__).parent.parent / "manage.py"), "migrate", "-v0"],
            env=env,
            check=True,
            timeout=300,
        )
        atexit.register(drop_database, template)
        _template = template
    _create(name, template=_template)


def _create(name: str, template: str | None = None) -> None:
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(query)


def database_url(name: str) -> str:
    """DATABASE_URL for database `name` on the server (and as the user) the suite uses."""
    parts = urlsplit(DATABASE_BASE)
    return f"{parts.scheme}://{parts.netloc}/{name}" + (f"?{parts.query}" if parts.query else "")


def drop_database(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
