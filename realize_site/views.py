from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from areas.models import ConsensusRun
from peers.events import household_snapshot
from peers.forms import AddPeerForm
from peers.models import LocalPeer


def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard.html",
        {
            "household": household_snapshot(),
            "local": LocalPeer.get(),
            "add_form": AddPeerForm(),
            "runs": ConsensusRun.objects.recent(limit=20),
        },
    )
