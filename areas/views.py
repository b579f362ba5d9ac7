from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from areas.forms import AddAreaForm
from areas.models import Area, ConsensusRun
from areas.pull import start_consensus
from areas.register import AreaError, add_area
from peers.client import PeerdUnavailable
from peers.wire import ProtocolError, RemoteError

# A browser waits for the answer: peerd is local and answers "areas" quickly, or not at all.
PEERD_TIMEOUT = 10.0


def areas_page(request: HttpRequest) -> HttpResponse:
    form = AddAreaForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            area = add_area(data["name"], data["path"], data["mode"])
        except AreaError as exc:
            form.add_error(None, _sentence(str(exc)))
        else:
            messages.success(request, f"Added area {area.name} at {area.path}.")
            return redirect("areas")
    return render(request, "areas/list.html", {"areas": Area.objects.overview(), "form": form})


def area_page(request: HttpRequest, name: str) -> HttpResponse:
    area = Area.objects.filter(name=name).with_counts().first()
    if area is None:
        raise Http404(f"No area named {name}")
    return render(
        request,
        "areas/detail.html",
        {
            "area": area,
            "runs": ConsensusRun.objects.recent(area, limit=50),
            "conflicts": area.unresolved_conflicts(),
        },
    )


@require_POST
def run_consensus_now(request: HttpRequest, name: str) -> HttpResponse:
    area = get_object_or_404(Area, name=name)
    try:
        runs = start_consensus(area, "browser", timeout=PEERD_TIMEOUT)
    except PeerdUnavailable as exc:
        messages.error(request, _sentence(str(exc)))
    except (OSError, RemoteError, ProtocolError) as exc:
        messages.error(request, f"Could not reach the peer daemon: {exc}.")
    except OperationalError as exc:
        messages.error(request, f"Could not queue the run for the worker: {exc}.")
    else:
        if runs:
            names = ", ".join(run.peer_name for run in runs)
            messages.success(request, f"Consensus started with {names}.")
        else:
            messages.error(request, f"No connected peer shares area {area.name}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "areas"
    return redirect(target)


def _sentence(text: str) -> str:
    """A domain error (one lowercase line) as a sentence on a page."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
