from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from areas.models import ConsensusRun
from areas.states import fold_idle
from peers.events import household_snapshot
from peers.forms import AddPeerForm
from peers.models import LocalPeer
from peers.views import connections_now
from realize_site import activity as activities
from realize_site.lib import charts
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


def activity(request: HttpRequest) -> HttpResponse:
    """Charts of transfer throughput and cache use over the last hour, day or week."""
    try:
        span = charts.parse_span(request.GET.get("span"))
    except charts.BadSpan as exc:
        return render(request, "activity.html", {"spans": charts.SPANS, "error": exc}, status=400)
    found = activities.activity(span)
    tz = timezone.get_current_timezone()
    return render(
        request,
        "activity.html",
        {
            "spans": charts.SPANS,
            "activity": found,
            "throughput": activities.throughput_chart(found, tz),
            "throughput_summary": activities.throughput_summary(found),
            "cache": activities.cache_chart(found, tz),
            "cache_summary": activities.cache_summary(found),
            "cache_read": any(found.cache),
        },
    )
