from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import household
from .events import household_snapshot
from .forms import AddPeerForm


def household_page(request: HttpRequest) -> HttpResponse:
    form = AddPeerForm(request.POST or None)
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
        request, "peers/household.html", {"form": form, "household": household_snapshot()}
    )


@require_POST
def remove(request: HttpRequest, name: str) -> HttpResponse:
    try:
        household.remove_peer(name)
    except household.HouseholdError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Removed peer {name}.")
    return redirect("household")
