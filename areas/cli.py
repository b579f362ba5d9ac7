"""Subcommands about areas: area add/list, consensus."""

from typing import TextIO

from areas.models import Area
from areas.pull import consensus_now
from areas.register import add_area


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
    consensus_now(options["area"], options["peer"], out)
