"""The household: this appliance's own entry and the peers it shares areas with.

`check_*` functions validate and raise HouseholdError with a one-line message; `add_peer`,
`edit_peer`, `set_paused`, `remove_peer` and `init_local_peer` change state and
announce it to open dashboards. peerd reads the household again within REFRESH_EVERY: a
paused or removed peer is disconnected then, an edited address dialled.
"""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from peers import events
from peers.identity import BadAddress, Identity, normalize_address, peer_id
from peers.models import LocalPeer, Peer, Stranger
from realize_site.lib import name_problem


class HouseholdError(ValueError):
    """Bad input for the household; its message is one line meant for a person."""


def check_name(name: str) -> str:
    name = name.strip()
    problem = name_problem(name, "peer")
    if problem:
        raise HouseholdError(problem)
    return name


def check_address(address: str | None) -> str:
    if not address or not address.strip():
        return ""
    try:
        return normalize_address(address)
    except BadAddress as exc:
        raise HouseholdError(f"bad address: {exc}") from None


def check_peer_key(text: str) -> bytes:
    try:
        key = peer_id.decode(text)
    except peer_id.BadPeerId as exc:
        raise HouseholdError(f"bad peer id: {exc}") from None
    local = LocalPeer.get()
    if local and bytes(local.public_key) == key:
        raise HouseholdError("that peer id is this appliance's own")
    return key


def check_new_peer(name: str, id_text: str, address: str | None) -> tuple[str, bytes, str]:
    name, key, address = check_name(name), check_peer_key(id_text), check_address(address)
    if Peer.objects.filter(name=name).exists():
        raise HouseholdError(f"a peer named {name!r} is already in the household")
    same_key = Peer.objects.by_key(key)
    if same_key:
        raise HouseholdError(f"that peer id is already in the household as {same_key.name!r}")
    return name, key, address


def add_peer(name: str, id_text: str, address: str | None = None) -> Peer:
    name, key, address = check_new_peer(name, id_text, address)
    try:
        with transaction.atomic():
            peer = Peer.objects.create(name=name, public_key=key, address=address)
            Stranger.objects.filter(public_key=key).delete()
            events.household_changed()
    except IntegrityError:
        # Someone added the same name or key between our check and our insert.
        raise HouseholdError(f"a peer named {name!r} or with that id was just added") from None
    return peer


def _peer(name: str) -> Peer:
    peer = Peer.objects.select_for_update().filter(name=name).first()
    if peer is None:
        raise HouseholdError(f"no peer named {name!r} in the household")
    return peer


def edit_peer(name: str, new_name: str | None = None, address: str | None = None) -> Peer:
    """Rename a peer or change the address it is dialled at ("" makes it deaf); None keeps
    a value. Its key, and so its history, stays."""
    new_name = check_name(new_name) if new_name is not None else None
    address = check_address(address) if address is not None else None
    try:
        with transaction.atomic():
            peer = _peer(name)
            if new_name is not None and new_name != peer.name:
                if Peer.objects.filter(name=new_name).exists():
                    raise HouseholdError(f"a peer named {new_name!r} is already in the household")
                peer.name = new_name
            if address is not None:
                peer.address = address
            peer.save(update_fields=["name", "address"])
            events.household_changed()
    except IntegrityError:
        raise HouseholdError(f"a peer named {new_name!r} was just added") from None
    return peer


def set_paused(name: str, paused: bool) -> Peer:
    """Pause a peer: it stays in the household, but is neither dialled nor answered, so
    nothing is synced with it until it is resumed. Resume: the reverse."""
    with transaction.atomic():
        peer = _peer(name)
        if peer.paused != paused:
            peer.paused = paused
            peer.save(update_fields=["paused"])
            events.household_changed()
    return peer


def remove_peer(name: str) -> None:
    with transaction.atomic():
        deleted, _ = Peer.objects.filter(name=name).delete()
        if not deleted:
            raise HouseholdError(f"no peer named {name!r} in the household")
        events.household_changed()


def init_local_peer(identity: Identity, name: str, listen: str | None) -> tuple[LocalPeer, bool]:
    """Record this appliance's name and listen address. Returns (row, changed).

    Idempotent: the same name and address change nothing. A different name is refused (the
    household knows this appliance by it); a different --listen updates the address.
    """
    name = check_name(name)
    listen_address = check_address(listen) if listen is not None else None
    with transaction.atomic():
        local = LocalPeer.objects.select_for_update().order_by("id").first()
        if local is None:
            local = LocalPeer.objects.create(
                name=name, public_key=identity.public_key, listen_address=listen_address or ""
            )
            events.household_changed()
            return local, True
        if bytes(local.public_key) != identity.public_key:
            raise HouseholdError(
                f"the database belongs to peer {local.peer_id}, not to the key in "
                f"{identity.key_path.parent}"
            )
        if local.name != name:
            raise HouseholdError(f"this appliance is already initialised as {local.name!r}")
        if listen_address is not None and listen_address != local.listen_address:
            local.listen_address = listen_address
            local.save(update_fields=["listen_address"])
            events.household_changed()
            return local, True
        return local, False


# The refused keys kept: the latest seen. Each has proven its key, but keys cost nothing to
# make, so the list is bounded all the same.
STRANGERS_KEPT = 50


def record_stranger(key: bytes, address: str, direction: str) -> None:
    """Remember a refused key so the dashboard can offer to add it."""
    if Peer.objects.by_key(key) is not None:
        return
    # update() skips auto_now: last_seen is set here.
    updated = Stranger.objects.filter(public_key=key).update(
        attempts=F("attempts") + 1, address=address, direction=direction, last_seen=timezone.now()
    )
    if not updated:
        Stranger.objects.get_or_create(
            public_key=key, defaults={"address": address, "direction": direction}
        )
        older = Stranger.objects.order_by("-last_seen", "-id").values_list("id", flat=True)
        Stranger.objects.filter(id__in=list(older[STRANGERS_KEPT:])).delete()
    events.household_changed()
