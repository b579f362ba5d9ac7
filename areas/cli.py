"""Subcommands about areas: area add/list, consensus."""

import contextlib
import io
import logging
import time
from typing import TextIO

from django.db import connection

from areas.models import Area, ConsensusRun
from areas.pull.consensus import FINISHED_CHANNEL
from areas.pull.sharing import start_consensus
from areas.register import AreaError, add_area
from realize_site.lib.errors import first_line, one_line

log = logging.getLogger(__name__)
PICKUP_WAIT = 600.0
# A waiting command reads its run's status when told the run ended, and at least this often.
CHECK_EVERY = 0.5


def register(commands) -> None:
    area = commands.add_parser("area", help="the areas this peer keeps in sync")
    area_commands = area.add_subparsers(dest="area_command", metavar="ACTION", required=True)
    add = area_commands.add_parser("add", help="add an area")
    add.add_argument("name")
    add.add_argument("path")
    add.add_argument("--mode", choices=["real", "unreal"], default="real")
    add.set_defaults(run=run_area_add)
    listing = area_commands.add_parser("list", help="list the areas")
    listing.set_defaults(run=run_area_list)

    consensus = commands.add_parser(
        "consensus", help="exchange an area's changes with peers now, and wait"
    )
    consensus.add_argument("area")
    consensus.add_argument("--peer", metavar="NAME", help="only this peer")
    consensus.set_defaults(run=run_consensus_now)


def run_area_add(options: dict, out: TextIO) -> None:
    area = add_area(options["name"], options["path"], options["mode"])
    out.write(f"Added area {area.name} at {area.path} ({area.mode})\n")


def run_area_list(options: dict, out: TextIO) -> None:
    areas = list(Area.objects.all())
    if not areas:
        out.write("No areas yet: add one with 'realize area add NAME PATH'\n")
        return
    width = max(len(a.name) for a in areas)
    for a in areas:
        files = a.entries.filter(blob_hash__isnull=False).count()
        out.write(f"{a.name:<{width}}  {a.mode:<6}  {files:>7} files  {a.path}\n")


def run_consensus_now(options: dict, out: TextIO) -> None:
    area = Area.objects.filter(name=options["area"]).first()
    if area is None:
        raise AreaError(f"no area named {options['area']!r}")
    runs = start_consensus(area, "command", only=options["peer"])
    if not runs:
        raise ConnectionError(f"no connected peer shares area {area.name}")
    failures = []
    for run in runs:
        run = _wait(run)
        line = (
            f"{area.name} with {run.peer_name}: {run.status}; "
            f"received {run.files_in} files ({run.bytes_in} bytes), "
            f"sent {run.files_out} files ({run.bytes_out} bytes)"
        )
        if run.conflicts:
            line += f", {run.conflicts} conflicts kept as copies"
        out.write(line + "\n")
        if run.status == ConsensusRun.Status.FAILED:
            failures.append(f"consensus with {run.peer_name} failed: {run.error}")
    out.flush()
    if failures:
        raise RuntimeError("; ".join(failures))


def consensus_asked_of_peerd(area: str, peer: str | None) -> dict:
    """`realize consensus` carried out inside peerd for a command line client (see
    realize_site.fast_consensus): what the command prints, and its one-line error if it failed."""
    out = io.StringIO()
    try:
        run_consensus_now({"area": area, "peer": peer}, out)
    except Exception as exc:  # noqa: BLE001 - answered, never re-run by the full command line
        message = one_line(exc)
        if message is None:
            log.exception("realize consensus failed inside peerd")
            message = f"internal error ({type(exc).__name__}): {first_line(exc)}; see peerd's log"
        return {"output": out.getvalue(), "error": message}
    return {"output": out.getvalue(), "error": None}


def _wait(run: ConsensusRun) -> ConsensusRun:
    """The run once it is over. Woken by the notice its end sends (consensus.notify_finished),
    its status then read in one plain query; read every CHECK_EVERY seconds all the same."""
    requested = time.monotonic()
    with _finished_notices() as wait:
        while True:
            with connection.cursor() as cursor:
                cursor.execute("SELECT status FROM areas_consensusrun WHERE id = %s", [run.pk])
                row = cursor.fetchone()
            status = row[0] if row else ConsensusRun.Status.FAILED
            if status in (ConsensusRun.Status.DONE, ConsensusRun.Status.FAILED):
                run.refresh_from_db()
                return run
            pending = status == ConsensusRun.Status.PENDING
            if pending and time.monotonic() - requested > PICKUP_WAIT:
                raise RuntimeError("no worker picked up the run: is 'realize up' running?")
            wait(CHECK_EVERY)


@contextlib.contextmanager
def _finished_notices():
    """A function waiting (at most its argument, in seconds) for the notice of a run's end,
    on this thread's database connection, which listens meanwhile: whether one came."""
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {FINISHED_CHANNEL}")
    listening = connection.connection

    def wait(seconds: float) -> bool:
        return any(True for _ in listening.notifies(timeout=seconds, stop_after=1))

    try:
        yield wait
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"UNLISTEN {FINISHED_CHANNEL}")
