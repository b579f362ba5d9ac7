"""Subcommands about areas: area add/list/edit/pause/resume/remove, consensus; the areas'
part of status."""

import io
import json
import os
from typing import TextIO

from areas import lifecycle, status
from areas.forms import directory_problem
from areas.models import Area, ConsensusRun
from areas.pull import consensus_now
from areas.register import AreaError, add_area
from peers import cli as peers_cli
from peers.models import LocalPeer


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
    edit = area_commands.add_parser("edit", help="change an area's settings")
    edit.add_argument("name")
    edit.add_argument(
        "--rest", type=int, metavar="SECONDS",
        help="quiet after a local create or edit before consensus starts by itself",
    )  # fmt: skip
    edit.add_argument(
        "--mode", choices=["real", "unreal"],
        help="unreal: content from peers is fetched when read; real: every file on this disk",
    )  # fmt: skip
    edit.add_argument(
        "--share", action="append", default=[], metavar="PEER",
        help="share the area with this household peer (the default); repeatable",
    )  # fmt: skip
    edit.add_argument(
        "--unshare", action="append", default=[], metavar="PEER",
        help="keep the area from this peer: neither offered nor synced; repeatable",
    )  # fmt: skip
    edit.set_defaults(run=run_area_edit)
    for action, helped, run in (
        ("pause", "stop syncing an area for now (it is still indexed)", run_area_pause),
        ("resume", "sync a paused area again", run_area_resume),
        ("remove", "stop syncing an area and forget it; its files stay", run_area_remove),
    ):
        command = area_commands.add_parser(action, help=helped)
        command.add_argument("name")
        command.set_defaults(run=run)

    consensus = commands.add_parser(
        "consensus", help="exchange an area's changes with peers now, and wait"
    )
    consensus.add_argument("area")
    consensus.add_argument("--peer", metavar="NAME", help="only this peer")
    consensus.set_defaults(run=run_consensus_now)


def run_area_add(options: dict, out: TextIO) -> None:
    path = options["path"]
    if "\x00" not in path:
        path = os.path.abspath(os.path.expanduser(path))  # on a command line, from here
    problem = directory_problem(path)
    if problem:
        raise AreaError(problem)
    area = add_area(options["name"], path, options["mode"])
    out.write(f"Added area {area.name} at {area.path} ({area.mode})\n")


def run_area_list(options: dict, out: TextIO) -> None:
    areas = list(Area.objects.all())
    if not areas:
        out.write("No areas yet: add one with 'realize area add NAME PATH'\n")
        return
    width = max(len(a.name) for a in areas)
    for a in areas:
        files = a.entries.filter(blob_hash__isnull=False).count()
        paused = "  (paused)" if a.paused else ""
        out.write(f"{a.name:<{width}}  {a.mode:<6}  {files:>7} files  {a.path}{paused}\n")


def run_area_edit(options: dict, out: TextIO) -> None:
    sharing = {name: True for name in options["share"]}
    both = sorted(set(sharing) & set(options["unshare"]))
    if both:
        raise AreaError(f"peer {both[0]} is both shared and unshared")
    sharing.update({name: False for name in options["unshare"]})
    if options["rest"] is None and not sharing and options["mode"] is None:
        raise AreaError("nothing to change: give --rest, --mode, --share or --unshare")
    name = options["name"]
    if options["rest"] is not None:
        area = lifecycle.set_rest(name, options["rest"])
        out.write(f"Area {area.name}: consensus starts {area.rest_seconds} s after a change\n")
    if options["mode"] is not None:
        area = lifecycle.set_mode(name, options["mode"])
        if area.realizing:
            left = lifecycle.unreal_left(area)
            out.write(f"Area {area.name} becomes Real once the mount has fetched its {left} "
                      "Unreal files onto this disk\n")  # fmt: skip
        else:
            out.write(f"Area {area.name} is {area.mode}\n")
    if sharing:
        area = lifecycle.set_sharing(name, sharing)
        shared = [peer.name for peer, yes in area.sharing() if yes]
        out.write(f"Area {area.name} is shared with: {', '.join(shared) or 'no peer'}\n")


def run_area_pause(options: dict, out: TextIO) -> None:
    area = lifecycle.pause(options["name"])
    out.write(f"Paused area {area.name}: it is still indexed, and syncs once resumed\n")


def run_area_resume(options: dict, out: TextIO) -> None:
    area = lifecycle.resume(options["name"])
    out.write(f"Resumed area {area.name}\n")


def run_area_remove(options: dict, out: TextIO) -> None:
    area = lifecycle.remove(options["name"])
    out.write(f"Removed area {area.name}; its files stay in {area.path}\n")


def run_consensus_now(options: dict, out: TextIO) -> None:
    consensus_now(options["area"], options["peer"], out)


def areas_state() -> list[dict]:
    """Each area, with its state and the failures that stand: per peer, the last run's
    error if it failed."""
    areas = list(Area.objects.with_counts())
    states = status.states(areas, status.connected_peers())
    failing: dict[int, list[dict]] = {}
    for run in ConsensusRun.objects.failing():
        when = run.finished_at or run.started_at or run.requested_at
        failing.setdefault(run.area_id, []).append(
            {"peer": run.peer_name, "error": run.error, "at": when.isoformat()}
        )
    return [
        {
            "name": area.name,
            "path": area.path,
            "mode": area.mode,
            "paused": area.paused,
            "state": str(states[area.pk]),
            "state_detail": states[area.pk].detail,
            "files": area.files,
            "open_conflicts": area.open_conflicts,
            "failing": failing.get(area.pk, []),
        }
        for area in areas
    ]


def run_status(options: dict, out: TextIO) -> None:
    """peers.cli's status, then the areas and what failed there."""
    household = io.StringIO()
    peers_cli.run_status(options, household)
    if options["json"]:
        state = json.loads(household.getvalue())
        state["areas"] = areas_state() if state["local"] is not None else []
        out.write(json.dumps(state, indent=2) + "\n")
        return
    out.write(household.getvalue())
    if LocalPeer.get() is None:
        return  # not initialised: peers.cli said so
    areas = areas_state()
    out.write(f"Areas: {len(areas)}\n")
    for area in areas:
        out.write(
            f"  {area['name']}  {area['path']}  ({area['mode']}, {area['files']} files)"
            f"  {area['state']}{': ' + area['state_detail'] if area['state_detail'] else ''}\n"
        )
        for failure in area["failing"]:
            out.write(
                f"    last run with {failure['peer']} failed at {failure['at']}: "
                f"{failure['error']}\n"
            )
