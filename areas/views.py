from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from areas import conflicts, lifecycle, status
from areas.files.paths import BadPath
from areas.forms import AddAreaForm, AreaSettingsForm, WindowForm
from areas.listing import PAGE, NoSuchDirectory, list_directory
from areas.models import Area, Conflict, ConsensusRun
from areas.pull import start_consensus
from areas.register import AreaError, add_area
from areas.states import fold_idle
from peers.client import PeerdUnavailable
from peers.wire import ProtocolError, RemoteError
from realize_site.lib import name_problem, sentence

# A browser waits for the answer: peerd is local and answers "areas" quickly, or not at all.
PEERD_TIMEOUT = 10.0


def areas_page(request: HttpRequest) -> HttpResponse:
    form = AddAreaForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            area = add_area(data["name"], data["path"], data["mode"])
        except AreaError as exc:
            form.add_error(None, sentence(str(exc)))
        except OSError as exc:  # the directory changed under us since the form's checks
            form.add_error("path", sentence(f"cannot use {data['path']}: {exc.strerror or exc}"))
        else:
            messages.success(request, f"Added area {area.name} at {area.path}.")
            return redirect("areas")
    areas = Area.objects.overview()
    states = status.states(areas, status.connected_peers())
    for area in areas:
        area.state = states[area.pk]
    return render(request, "areas/list.html", {"areas": areas, "form": form})


def _area_or_404(name: str, queryset=None) -> Area:
    """The area of this URL name; 404 for a name no area can have (one with NUL would reach
    the database and fail there)."""
    if name_problem(name, "area"):
        raise Http404("No such area")
    area = (queryset if queryset is not None else Area.objects).filter(name=name).first()
    if area is None:
        raise Http404(f"No area named {name}")
    return area


def area_page(
    request: HttpRequest, name: str, settings_form=None, window_form=None
) -> HttpResponse:
    area = _area_or_404(name, Area.objects.with_counts())
    form = settings_form or AreaSettingsForm(initial={"rest_seconds": area.rest_seconds})
    windows = list(area.windows.select_related("task"))
    starts = [s for s in (w.next_start() for w in windows) if s is not None]
    connected = status.connected_peers()
    running = ConsensusRun.objects.filter(area=area, status=ConsensusRun.Status.RUNNING).first()
    return render(
        request,
        "areas/detail.html",
        {
            "area": area,
            "state": status.states([area], connected)[area.pk],
            "sizes": area.sizes(),
            "progress_text": running.progress_text() if running else "",
            "needed": status.needed(area, connected),
            "changes": area.recent_changes(),
            "runs": fold_idle(ConsensusRun.objects.recent(area, limit=200))[:50],
            "failures": ConsensusRun.objects.failing(area),
            "conflicts": area.unresolved_conflicts(),
            "settings_form": form,
            "sharing": area.sharing(),
            "windows": windows,
            "next_window": min(starts, default=None),
            "window_form": window_form or WindowForm(initial={"time_zone": settings.TIME_ZONE}),
        },
        status=400 if settings_form is not None or window_form is not None else 200,
    )


@require_POST
def area_settings(request: HttpRequest, name: str) -> HttpResponse:
    area = _area_or_404(name)
    form = AreaSettingsForm(request.POST)
    if not form.is_valid():
        return area_page(request, area.name, settings_form=form)
    lifecycle.set_rest(area.name, form.cleaned_data["rest_seconds"])
    messages.success(request, f"Area {area.name}: consensus now starts "
                     f"{form.cleaned_data['rest_seconds']} s after a change.")  # fmt: skip
    return redirect("area", area.name)


@require_POST
def area_mode(request: HttpRequest, name: str) -> HttpResponse:
    area = _area_or_404(name)
    try:
        area = lifecycle.set_mode(area.name, request.POST.get("mode", ""))
    except AreaError as exc:
        messages.error(request, sentence(str(exc)))
        return redirect("area", area.name)
    if area.realizing:
        messages.success(request, f"Area {area.name} becomes Real once the mount has fetched "
                         "its Unreal files onto this disk.")  # fmt: skip
    elif area.mode == Area.Mode.UNREAL:
        messages.success(request, f"Area {area.name} is Unreal: its files stay on this disk, "
                         "and new content from peers is fetched when read.")  # fmt: skip
    else:
        messages.success(request, f"Area {area.name} is Real.")
    return redirect("area", area.name)


@require_POST
def area_sharing(request: HttpRequest, name: str) -> HttpResponse:
    """The household peers the area is shared with: the ticked ones; kept from the others."""
    area = _area_or_404(name)
    ticked = set(request.POST.getlist("share"))
    lifecycle.set_sharing(area.name, {peer.name: peer.name in ticked for peer, _ in area.sharing()})
    shared = [peer.name for peer, yes in area.sharing() if yes]
    messages.success(request, f"Area {area.name} is shared with "
                     f"{', '.join(shared) if shared else 'no peer'}.")  # fmt: skip
    return redirect("area", area.name)


@require_POST
def pause_area(request: HttpRequest, name: str) -> HttpResponse:
    area = lifecycle.pause(_area_or_404(name).name)
    messages.success(request, f"Paused area {area.name}: it is still indexed, and syncs "
                     "again once resumed.")  # fmt: skip
    return redirect("area", area.name)


@require_POST
def resume_area(request: HttpRequest, name: str) -> HttpResponse:
    area = lifecycle.resume(_area_or_404(name).name)
    messages.success(request, f"Resumed area {area.name}.")
    return redirect("area", area.name)


@require_POST
def add_window(request: HttpRequest, name: str) -> HttpResponse:
    area = _area_or_404(name)
    form = WindowForm(request.POST)
    if not form.is_valid():
        return area_page(request, area.name, window_form=form)
    try:
        window = lifecycle.add_window(area.name, **form.cleaned_data)
    except AreaError as exc:
        form.add_error(None, sentence(str(exc)))
        return area_page(request, area.name, window_form=form)
    messages.success(request, f"Area {area.name} now syncs by itself only within its "
                     f"windows: added {window.describe()}.")  # fmt: skip
    return redirect("area", area.name)


@require_POST
def remove_window(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    area = _area_or_404(name)
    try:
        lifecycle.remove_window(area.name, pk)
    except AreaError as exc:
        raise Http404(str(exc)) from None
    messages.success(request, "Removed the consensus window.")
    return redirect("area", area.name)


def remove_area(request: HttpRequest, name: str) -> HttpResponse:
    """A page that says what removing does, then the removal (POST)."""
    area = _area_or_404(name, Area.objects.with_counts())
    if request.method == "POST":
        try:
            lifecycle.remove(area.name)
        except AreaError as exc:
            messages.error(request, sentence(str(exc)))
            return redirect("area", area.name)
        messages.success(request, f"Removed area {area.name}. Its files stay in {area.path}.")
        return redirect("areas")
    return render(request, "areas/remove.html", {"area": area})


@require_POST
def run_consensus_now(request: HttpRequest, name: str) -> HttpResponse:
    area = _area_or_404(name)
    try:
        runs = start_consensus(area, "browser", timeout=PEERD_TIMEOUT)
    except (PeerdUnavailable, AreaError) as exc:
        messages.error(request, sentence(str(exc)))
    except (OSError, RemoteError, ProtocolError) as exc:
        messages.error(request, f"Could not reach the peer daemon: {exc}.")
    except OperationalError as exc:
        messages.error(request, f"Could not queue the run for the worker: {exc}.")
    else:
        unqueued = [run for run in runs if run.queue_error]
        if unqueued:
            names = ", ".join(run.peer_name for run in unqueued)
            messages.error(
                request,
                f"Consensus with {names} could not be queued: the broker (Redis) is "
                f"unreachable ({unqueued[0].queue_error}). It is sent again on the next try.",
            )
        elif runs:
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


def files_page(request: HttpRequest, name: str) -> HttpResponse:
    """A directory of the area (`?path=`, the root without), a page (`&page=`) at a time."""
    area = _area_or_404(name)
    path = request.GET.get("path", "")
    number = request.GET.get("page", "")
    page = int(number) if number.isascii() and number.isdigit() and len(number) < 7 else 1
    try:
        listing = list_directory(area, path, (max(page, 1) - 1) * PAGE, PAGE)
    except BadPath as exc:
        problem, status = f"This is not a path of an area: {exc}.", 400
    except NoSuchDirectory as exc:
        problem, status = sentence(str(exc)), 404
    else:
        if page > listing.pages:
            return redirect(_files_url(area.name, listing.directory, listing.pages))
        return render(request, "areas/files.html", {"area": area, "listing": listing})
    context = {"area": area, "problem": problem}
    return render(request, "areas/files.html", context, status=status)


def _files_url(area: str, directory: str, page: int = 1) -> str:
    query = {k: v for k, v in (("path", directory), ("page", page)) if v and v != 1}
    return reverse("area_files", args=[area]) + (f"?{urlencode(query)}" if query else "")


def conflict_page(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    """Both versions compared; a choice of which to keep (POST)."""
    area = _area_or_404(name)
    conflict = Conflict.objects.filter(area=area, pk=pk).select_related("area").first()
    if conflict is None:
        raise Http404("No such conflict")
    if request.method == "POST":
        try:
            done = conflicts.resolve(
                conflict, request.POST.get("keep", ""), request.POST.get("new_name", "")
            )
        except AreaError as exc:
            messages.error(request, sentence(str(exc)))
            return redirect("conflict", area.name, conflict.pk)
        except OSError as exc:
            messages.error(request, f"Could not change the files: {exc.strerror or exc}.")
            return redirect("conflict", area.name, conflict.pk)
        if Conflict.objects.filter(pk=conflict.pk, resolved_at=None).exists():
            messages.info(request, done)  # it waits for the mount
            return redirect("conflict", area.name, conflict.pk)
        messages.success(request, f"Resolved: {done}")
        return redirect("area", area.name)
    return render(
        request,
        "areas/conflict.html",
        {"area": area, "conflict": conflict, "seen": conflicts.compare(conflict)},
    )
