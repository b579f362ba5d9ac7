"""Subcommands about identity and the household: init, id, peer, status."""

import json
from typing import TextIO

from django.conf import settings

from peers import household
from peers.client import ask_peerd
from peers.events import household_snapshot
from peers.identity import create_identity, load_identity
from peers.models import LocalPeer, Peer
from peers.schedules import ensure_schedules
from realize_site.lib import provision


def register(commands) -> None:
    init = commands.add_parser("init", help="create this peer's identity and database schema")
    init.add_argument("--name", required=True, help="this peer's name in the household")
    init.add_argument("--listen", metavar="HOST:PORT", help="address other peers connect to")
    init.set_defaults(run=run_init)

    ident = commands.add_parser("id", help="print this peer's id")
    ident.set_defaults(run=run_id)

    peer = commands.add_parser("peer", help="the household's peers")
    peer_commands = peer.add_subparsers(dest="peer_command", metavar="ACTION", required=True)
    add = peer_commands.add_parser("add", help="add a peer to the household")
    add.add_argument("name")
    add.add_argument("peer_id", metavar="PEER_ID")
    add.add_argument("--address", metavar="HOST:PORT", help="omit for a deaf peer")
    add.set_defaults(run=run_peer_add)
    listing = peer_commands.add_parser("list", help="list the household's peers")
    listing.set_defaults(run=run_peer_list)
    remove = peer_commands.add_parser("remove", help="remove a peer from the household")
    remove.add_argument("name")
    remove.set_defaults(run=run_peer_remove)
    edit = peer_commands.add_parser("edit", help="rename a peer or change its address")
    edit.add_argument("name")
    edit.add_argument("--name", dest="new_name", metavar="NEW_NAME", help="its new name")
    edit.add_argument("--address", metavar="HOST:PORT", help="where it listens; '' for deaf")
    edit.set_defaults(run=run_peer_edit)
    for action, helped in (
        ("pause", "stop syncing with a peer for now: neither dialled nor answered"),
        ("resume", "sync with a paused peer again"),
    ):
        command = peer_commands.add_parser(action, help=helped)
        command.add_argument("name")
        command.set_defaults(run=run_peer_pause, paused=action == "pause")

    status = commands.add_parser("status", help="show this appliance's state")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=run_status)


def run_init(options: dict, out: TextIO) -> None:
    name = household.check_name(options["name"])
    listen = options["listen"]
    if listen is not None:
        listen = household.check_address(listen)
    provision.ensure_database()
    provision.migrate()
    identity, key_created = create_identity()
    local, changed = household.init_local_peer(identity, name, listen)
    ensure_schedules()
    password = provision.ensure_first_admin()
    if key_created or changed:
        out.write(f"Peer {local.name} initialised in {settings.REALIZE_HOME}\n")
    else:
        out.write(f"Peer {local.name} is already initialised; nothing changed\n")
    out.write(f"Peer id: {local.peer_id}\n")
    out.write(f"Listening on: {local.listen_address or '- (deaf: connects out only)'}\n")
    if password:
        out.write(
            f"Web login: {provision.ADMIN_USERNAME} / {password}  "
            "(shown once; change it in the browser)\n"
        )


def run_id(options: dict, out: TextIO) -> None:
    out.write(load_identity().peer_id + "\n")


def run_peer_add(options: dict, out: TextIO) -> None:
    peer = household.add_peer(options["name"], options["peer_id"], options["address"])
    kind = f"listening at {peer.address}" if peer.address else "deaf"
    out.write(f"Added peer {peer.name} ({kind})\n")


def run_peer_list(options: dict, out: TextIO) -> None:
    peers = list(Peer.objects.all())
    if not peers:
        out.write("No peers yet: add one with 'realize peer add NAME PEER_ID'\n")
        return
    width = max(len(p.name) for p in peers)
    for p in peers:
        paused = "  (paused)" if p.paused else ""
        out.write(f"{p.name:<{width}}  {p.peer_id}  {p.address or '(deaf)'}{paused}\n")


def run_peer_edit(options: dict, out: TextIO) -> None:
    if options["new_name"] is None and options["address"] is None:
        raise household.HouseholdError("nothing to change: give --name or --address")
    peer = household.edit_peer(options["name"], options["new_name"], options["address"])
    kind = f"listening at {peer.address}" if peer.address else "deaf"
    out.write(f"Peer {peer.name} ({kind})\n")


def run_peer_pause(options: dict, out: TextIO) -> None:
    peer = household.set_paused(options["name"], options["paused"])
    if peer.paused:
        out.write(f"Paused peer {peer.name}: nothing is synced with it until resumed\n")
    else:
        out.write(f"Resumed peer {peer.name}\n")


def run_peer_remove(options: dict, out: TextIO) -> None:
    household.remove_peer(options["name"])
    out.write(f"Removed peer {options['name']}\n")


def _traffic() -> dict | None:
    """Bytes sent to and received from each peer since peerd started; None if not running."""
    return ask_peerd("traffic", timeout=10)


def run_status(options: dict, out: TextIO) -> None:
    snapshot = household_snapshot()
    local = LocalPeer.get()
    state = {
        "home": str(settings.REALIZE_HOME),
        "local": snapshot["local"],
        "peers": snapshot["peers"],
        "worker_seen_at": local.worker_seen_at.isoformat()
        if local and local.worker_seen_at
        else None,
    }
    state["traffic"] = _traffic()
    if options["json"]:
        out.write(json.dumps(state, indent=2) + "\n")
        return
    if snapshot["local"] is None:
        out.write(f"Not initialised ({settings.REALIZE_HOME}): run 'realize init --name NAME'\n")
        return
    me = snapshot["local"]
    out.write(f"Peer {me['name']}  {me['peer_id']}\n")
    out.write(f"Listening on: {me['listen_address'] or '- (deaf)'}\n")
    out.write(f"Worker last seen: {state['worker_seen_at'] or 'never'}\n")
    out.write(f"Household: {len(snapshot['peers'])} peer(s)\n")
    for p in snapshot["peers"]:
        paused = "  (paused)" if p["paused"] else ""
        out.write(f"  {p['name']}  {p['peer_id']}  {p['address'] or '(deaf)'}{paused}\n")
