from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from areas.models import ConsensusRun
from areas.states import fold_idle
from peers.events import household_snapshot
from peers.forms import AddPeerForm
from peers.models import LocalPeer
from peers.views import connections_now
from realize_site.models import ApiToken


def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard.html",
        {
            "household": household_snapshot(),
            "local": LocalPeer.get(),
            "add_form": AddPeerForm(),
            "runs": fold_idle(ConsensusRun.objects.recent(limit=100))[:20],
            "connections": connections_now(),
        },
    )


def api_tokens(request: HttpRequest) -> HttpResponse:
    """This login's API tokens: make one (shown once), or revoke one."""
    made = None
    if request.method == "POST":
        if "revoke" in request.POST:
            ApiToken.objects.filter(user=request.user, pk=request.POST["revoke"]).delete()
            messages.success(request, "Revoked the token: scripts using it are refused now.")
            return redirect("api_tokens")
        name = request.POST.get("name", "").strip()
        if not name or len(name) > 64:
            messages.error(request, "Give the token a name of 1 to 64 characters.")
            return redirect("api_tokens")
        _, made = ApiToken.objects.issue(request.user, name)
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "api_tokens.html", {"tokens": tokens, "made": made})
