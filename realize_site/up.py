"""`realize up`: run this instance's processes under one supervisor."""

import fcntl
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from django.conf import settings

from areas.models import Area
from fusemount.mount import FUSE_DEVICE, MountError, fuse_available, prepare
from peers.identity import BadAddress, load_identity, parse_address
from peers.models import LocalPeer
from realize_site.lib import up_state_file
from realize_site.supervisor import Program, Supervisor

DEFAULT_WEB = "127.0.0.1:8000"
DEFAULT_MOUNT = "~/Realize"


def register(commands) -> None:
    up = commands.add_parser("up", help="run all of this appliance's processes")
    up.add_argument("--web", metavar="HOST:PORT", default=DEFAULT_WEB, help="web pages address")
    where = up.add_mutually_exclusive_group()
    where.add_argument(
        "--mount", metavar="DIR", help=f"mount the areas at DIR (default: {DEFAULT_MOUNT})"
    )
    where.add_argument("--no-mount", action="store_true", help="run without the mount")
    up.set_defaults(run=run_up)


def run_dir() -> Path:
    path = settings.REALIZE_HOME / "run"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def state() -> dict | None:
    """What `realize up` is running now for this instance, or None."""
    try:
        return json.loads(up_state_file(settings.REALIZE_HOME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def programs(web_host: str, web_port: int, mount: Path | None = None) -> list[Program]:
    python = sys.executable
    name = LocalPeer.get().name
    mounted = [Program("mount", [python, "-m", "realize_site.cli", "mount", str(mount)])]
    return [
        Program(
            "web",
            [
                python,
                "-m",
                "daphne",
                "-b",
                web_host,
                "-p",
                str(web_port),
                "--proxy-headers",
                "realize_site.asgi:application",
            ],
        ),
        Program("peerd", [python, "-m", "realize_site.cli", "serve"]),
        Program(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "realize_site",
                "worker",
                "--loglevel",
                "INFO",
                "--hostname",
                f"worker.{name}@%h",
                "--concurrency",
                "2",
                # One worker per instance: mingle (a wait before the first task) and gossip
                # with other workers serve nothing here.
                "--without-mingle",
                "--without-gossip",
            ],
        ),
        Program(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "realize_site",
                "beat",
                "--loglevel",
                "INFO",
                "--scheduler",
                settings.CELERY_BEAT_SCHEDULER,
                "--pidfile=",
            ],
        ),
        *(mounted if mount else []),
    ]


def mountpoint(options: dict, say) -> Path | None:
    """Where to mount, checked before anything starts; None: no mount.

    Without FUSE on this machine the appliance runs without it. A mountpoint missing is
    made. Otherwise a mountpoint given that cannot serve is an error; if the default one
    cannot serve, the appliance runs without it."""
    if options["no_mount"]:
        return None
    if not fuse_available():
        say(f"running without the mount: {FUSE_DEVICE} is missing on this machine")
        return None
    where = options["mount"]
    if where is None:
        where = DEFAULT_MOUNT
    where = os.path.expanduser(where)
    try:
        _make_missing(where)  # as `make run`'s ~/Realize on a fresh machine
    except OSError as exc:
        if options["mount"] is not None:
            raise MountError(f"mountpoint {where}: {exc.strerror}") from None
    try:
        path = prepare(where, Area.objects.values_list("path", flat=True))
    except MountError as exc:
        if options["mount"] is not None:
            raise
        say(f"running without the mount: {exc}")
        return None
    return path


def _make_missing(where: str) -> None:
    """Make the mountpoint if nothing is there (a dead mount is left to `prepare`)."""
    try:
        os.lstat(where)
    except FileNotFoundError:
        os.makedirs(where)
    except OSError:
        pass  # not reachable, a mount that died say: prepare() says what it is


def run_up(options: dict, out: TextIO) -> None:
    try:
        web_host, web_port = parse_address(options["web"])
    except BadAddress as exc:
        raise ValueError(f"bad --web address: {exc}") from None
    load_identity()
    if LocalPeer.get() is None:
        raise RuntimeError("this appliance is not initialised: run 'realize init --name NAME'")

    lock = open(run_dir() / "up.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RuntimeError(f"'realize up' is already running for {settings.REALIZE_HOME}") from None

    def say(line: str) -> None:
        out.write(f"[up] {line}\n")
        out.flush()

    mount = mountpoint(options, say)
    shown = f"[{web_host}]" if ":" in web_host else web_host
    say(f"web pages at http://{shown}:{web_port}/ (logs in {settings.REALIZE_HOME / 'logs'})")
    if mount is not None:
        say(f"the areas mounted at {mount}")
    supervisor = Supervisor(
        programs(web_host, web_port, mount),
        log_dir=settings.REALIZE_HOME / "logs",
        state_file=up_state_file(settings.REALIZE_HOME),
        say=say,
        env=dict(os.environ),
        cwd=run_dir(),
    )
    try:
        supervisor.run()
    finally:
        lock.close()
    say("stopped")
