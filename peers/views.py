from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from peers import household
from peers.client import ask_peerd
from peers.events import household_snapshot
from peers.forms import AddPeerForm, EditPeerForm
from peers.models import Peer, Stranger
from realize_site.lib import name_problem, sentence

# A page waits this long at most for peerd's word on the connections (live events follow).
PEERD_WAIT = 1.0


def household_page(request: HttpRequest) -> HttpResponse:
    # "Add this peer" on a refused connection links here with its id (and address).
    initial = {key: request.GET[key] for key in ("peer_id", "address") if key in request.GET}
    form = AddPeerForm(request.POST or None, initial=initial)
    if initial:
        form.fields["name"].widget.attrs["autofocus"] = True
    if request.method == "POST" and form.is_valid():
        try:
            peer = household.add_peer(
                form.cleaned_data["name"],
                form.cleaned_data["peer_id"],
                form.cleaned_data["address"],
            )
        except household.HouseholdError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Added peer {peer.name}.")
            return redirect("household")
    return render(
        request,
        "peers/household.html",
        {
            "form": form,
            "household": household_snapshot(),
            "strangers": Stranger.objects.all()[:20],
            "connections": connections_now(),
        },
    )


def connections_now() -> dict:
    """What peerd says of the connections now (as its peers.connections event), for a page
    to start from; {} when peerd does not answer at once."""
    return {
        "connections": ask_peerd("connections", PEERD_WAIT) or {},
        "traffic": ask_peerd("traffic", PEERD_WAIT) or {},
    }


def _peer_or_404(name: str) -> Peer:
    peer = None if name_problem(name, "peer") else Peer.objects.filter(name=name).first()
    if peer is None:
        raise Http404("No such peer")
    return peer


def peer_page(request: HttpRequest, name: str) -> HttpResponse:
    """One peer: its connection, its name and address edited (POST), paused or removed."""
    peer = _peer_or_404(name)
    form = EditPeerForm(request.POST or None, initial={"name": peer.name, "address": peer.address})
    if request.method == "POST" and form.is_valid():
        try:
            peer = household.edit_peer(
                peer.name, form.cleaned_data["name"], form.cleaned_data["address"]
            )
        except household.HouseholdError as exc:
            form.add_error(None, sentence(str(exc)))
        else:
            messages.success(request, f"Saved peer {peer.name}.")
            return redirect("peer", peer.name)
    return render(
        request,
        "peers/peer.html",
        {"peer": peer, "form": form, "connections": connections_now()},
        status=400 if form.errors else 200,
    )


@require_POST
def pause(request: HttpRequest, name: str) -> HttpResponse:
    peer = household.set_paused(_peer_or_404(name).name, request.POST.get("paused") != "0")
    if peer.paused:
        messages.success(request, f"Paused peer {peer.name}: nothing is synced with it "
                         "until you resume it.")  # fmt: skip
    else:
        messages.success(request, f"Resumed peer {peer.name}.")
    return redirect("peer", peer.name)


@require_POST
def remove(request: HttpRequest, name: str) -> HttpResponse:
    try:
        household.remove_peer(name)
    except household.HouseholdError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Removed peer {name}.")
    return redirect("household")
