"""The JSON API behind the pages' state, for scripts: django-ninja, with its OpenAPI schema
and docs at /api/v1/docs.

A script sends `Authorization: Bearer <token>` (tokens are made on the API tokens page); a
logged-in browser may use its session (and its CSRF token for changes). Views stay thin:
each calls the domain functions the pages and the command line call.
"""

import datetime

from django.contrib.auth.decorators import login_not_required, login_required
from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, P, Query, Schema, Status
from ninja.security import HttpBearer, django_auth

from areas import lifecycle
from areas import status as area_status
from areas.cli import areas_state
from areas.events import run_row
from areas.files.paths import BadPath
from areas.listing import PAGE, NoSuchDirectory, list_directory
from areas.models import Area, Conflict, ConsensusRun
from areas.pull import start_consensus
from areas.register import AreaError
from peers.client import PeerdUnavailable, ask_peerd
from peers.models import LocalPeer, Peer
from peers.wire import ProtocolError, RemoteError
from realize_site.activity import activity as read_activity
from realize_site.lib import charts, name_problem
from realize_site.models import ApiToken

PEERD_TIMEOUT = 5.0

EVENTS = """
The pages also listen on a websocket, `/ws/dashboard/` (the same login: a session cookie).
Each message is a JSON object with a `type`:

- `household.changed`: this peer (`local`), its `peers` and the refused `strangers`; sent
  when the household changes, and first on every connection.
- `appliance.heartbeat`: `worker_seen_at`, when the worker last answered.
- `consensus.run`: a `run` as `GET /api/v1/runs/{id}` gives it, when it is asked for,
  starts and ends, and every second while it pulls (with `progress`: `percent`, `rate`
  in bytes a second, `seconds_left`).
- `areas.history`: the `area` whose recent changes moved on (a change made here or
  taken from a peer); `GET /api/v1/areas/{name}` gives them.
- `areas.changed`: an area was added, changed or removed (fetch `/api/v1/areas`).
- `peers.connections`: `connections` (per peer: `since` and `address` if connected, else
  `last_seen`; seconds since the epoch) and `traffic` (per peer: bytes `sent` and
  `received`), at `at`; sent at each connection and disconnection, and every 5 s.

A socket closed with code 4401 means the login is gone: log in again.
"""


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str):
        user = ApiToken.objects.user_for(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="Realize",
    version="1",
    description="The state the browser pages show, and the changes they make." + EVENTS,
    auth=[TokenAuth(), django_auth],
    urls_namespace="api",
    docs_decorator=login_required,
)


class LocalOut(Schema):
    name: str
    peer_id: str
    listen_address: str


class PeerOut(Schema):
    name: str
    peer_id: str
    address: str
    paused: bool
    connected_since: str | None = None
    connected_at: str | None = None
    last_seen: str | None = None


class FailureOut(Schema):
    peer: str
    error: str
    at: str


class AreaOut(Schema):
    name: str
    path: str
    mode: str
    paused: bool
    state: str
    state_detail: str
    files: int
    open_conflicts: int
    failing: list[FailureOut]


class ProgressOut(Schema):
    percent: int
    rate: float
    seconds_left: int | None


class RunOut(Schema):
    id: int
    area: str
    peer: str
    trigger: str
    status: str
    requested_at: datetime.datetime
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    files_in: int
    bytes_in: int
    files_out: int
    bytes_out: int
    conflicts: int
    error: str
    files_total: int | None
    bytes_total: int | None
    progress: ProgressOut | None


class ConflictOut(Schema):
    id: int
    path: str
    copy_path: str
    description: str
    created_at: datetime.datetime


class WindowOut(Schema):
    id: int
    describe: str
    next_start: datetime.datetime | None


class NeededOut(Schema):
    peer: str
    items: int
    bytes: int
    paths: list[tuple[str, str, int]]


class ChangeOut(Schema):
    seq: int
    kind: str
    path: str
    old_path: str
    size: int
    by: str
    at: datetime.datetime


class AreaDetailOut(Schema):
    area: AreaOut
    rest_seconds: int
    sizes: dict[str, int]  # global_files, global_bytes, local_files, local_bytes
    shared_with: list[str]
    windows: list[WindowOut]
    runs: list[RunOut]
    conflicts: list[ConflictOut]
    needed: list[NeededOut]
    changes: list[ChangeOut]


class StatusOut(Schema):
    local: LocalOut | None
    peers: list[PeerOut]
    areas: list[AreaOut]


class ErrorOut(Schema):
    detail: str


class DirectoryOut(Schema):
    name: str
    path: str
    files: int
    size: int


class FileOut(Schema):
    name: str
    path: str
    size: int
    mtime: datetime.datetime
    mode: int
    state: str
    status: str
    cached: float | None
    conflict_id: int | None


class FilesOut(Schema):
    area: str
    path: str
    offset: int
    limit: int
    total: int
    directories: list[DirectoryOut]
    files: list[FileOut]


class PointOut(Schema):
    at: datetime.datetime  # the bucket's start; it lasts step_seconds
    sent: float  # bytes per second, on average over the bucket
    received: float
    held: int | None  # the cache's bytes held at the bucket's last reading; None: no reading
    limit: int | None


class PeerPointOut(Schema):
    at: datetime.datetime
    sent: float
    received: float


class PeerActivityOut(Schema):
    peer: str
    sent: int  # bytes over the span
    received: int
    points: list[PeerPointOut]


class ActivityOut(Schema):
    span: str
    start: datetime.datetime
    end: datetime.datetime
    step_seconds: int
    points: list[PointOut]
    peers: list[PeerActivityOut]


def _run(run: ConsensusRun) -> RunOut:
    """As the websocket's consensus.run event gives it (areas.events.run_row)."""
    return RunOut(**run_row(run))


def _area(name: str) -> Area:
    if name_problem(name, "area"):  # a name with NUL would fail in the database
        raise Http404("No such area")
    return get_object_or_404(Area, name=name)


def _state(name: str) -> dict:
    """The area as the areas list gives it."""
    return next(a for a in areas_state() if a["name"] == name)


@api.get("/status", response=StatusOut, summary="This peer, its peers and its areas")
def status(request):
    local = LocalPeer.get()
    connections = ask_peerd("connections", PEERD_TIMEOUT) or {}
    peers = []
    for peer in Peer.objects.order_by("name"):
        state = connections.get(peer.name, {})
        peers.append(
            PeerOut(
                name=peer.name, peer_id=peer.peer_id, address=peer.address, paused=peer.paused,
                connected_since=_iso(state.get("since")), connected_at=state.get("address"),
                last_seen=_iso(state.get("last_seen")),
            )  # fmt: skip
        )
    return StatusOut(
        local=LocalOut(name=local.name, peer_id=local.peer_id,
                       listen_address=local.listen_address or "") if local else None,  # fmt: skip
        peers=peers,
        areas=areas_state(),
    )


@api.get("/areas", response=list[AreaOut], summary="The areas, with counts and failures")
def areas(request):
    return areas_state()


@api.get("/areas/{name}", response={200: AreaDetailOut, 404: ErrorOut}, summary="An area")
def area(request, name: str):
    found = _area(name)
    return AreaDetailOut(
        area=_state(found.name),
        rest_seconds=found.rest_seconds,
        sizes=found.sizes(),
        shared_with=[peer.name for peer, shared in found.sharing() if shared],
        needed=[vars(n) for n in area_status.needed(found, area_status.connected_peers())],
        changes=[
            ChangeOut(seq=c.seq, kind=c.kind, path=c.path, old_path=c.old_path, size=c.size,
                      by=c.by, at=c.created_at)  # fmt: skip
            for c in found.recent_changes()
        ],
        windows=[WindowOut(id=w.pk, describe=w.describe(), next_start=w.next_start())
                 for w in found.windows.select_related("task")],  # fmt: skip
        runs=[_run(r) for r in ConsensusRun.objects.recent(found, limit=50)],
        conflicts=[
            ConflictOut(id=c.pk, path=c.path, copy_path=c.copy_path,
                        description=c.description, created_at=c.created_at)  # fmt: skip
            for c in Conflict.objects.filter(area=found, resolved_at=None)
        ],
    )


@api.post(
    "/areas/{name}/consensus",
    response={202: list[RunOut], 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    summary="Run consensus now with the connected peers sharing the area",
)
def run_consensus(request, name: str):
    found = _area(name)
    try:
        runs = start_consensus(found, "api", timeout=PEERD_TIMEOUT)
    except AreaError as exc:
        return Status(409, {"detail": str(exc)})
    except (PeerdUnavailable, OSError, ProtocolError, RemoteError) as exc:
        return Status(503, {"detail": f"the peer daemon cannot be asked: {exc}"})
    return Status(202, [_run(r) for r in runs])


@api.post("/areas/{name}/pause", response={200: AreaOut, 404: ErrorOut}, summary="Pause an area")
def pause(request, name: str):
    return _state(lifecycle.pause(_area(name).name).name)


@api.post("/areas/{name}/resume", response={200: AreaOut, 404: ErrorOut}, summary="Resume it")
def resume(request, name: str):
    return _state(lifecycle.resume(_area(name).name).name)


@api.get(
    "/areas/{name}/files",
    response={200: FilesOut, 400: ErrorOut, 404: ErrorOut},
    summary="A directory of an area: its directories, then its files with their state",
    description="`path`: the directory (none: the area's root). Directories come first, "
    "each with the count and size of the files under it, then files; each by name, "
    "`limit` entries from `offset` of `total`. A file's `state` is real (on this disk), "
    "unreal (its content on other peers; `cached`: the share in this peer's cache) or "
    "conflict (`conflict_id`: the open conflict it is a side of).",
)
def files(
    request,
    name: str,
    path: str = "",
    offset: Query[int, P(ge=0, le=2**31)] = 0,
    limit: Query[int, P(ge=1, le=1000)] = PAGE,
):
    found = _area(name)
    try:
        listing = list_directory(found, path, offset, limit)
    except BadPath as exc:
        return Status(400, {"detail": f"not a path of an area: {exc}"})
    except NoSuchDirectory as exc:
        return Status(404, {"detail": str(exc)})
    return FilesOut(
        area=found.name, path=listing.directory, offset=listing.offset, limit=listing.limit,
        total=listing.total, directories=[DirectoryOut(**vars(d)) for d in listing.directories],
        files=[FileOut(**vars(f), status=f.status) for f in listing.files],
    )  # fmt: skip


@api.get("/runs/{run_id}", response={200: RunOut, 404: ErrorOut}, summary="A consensus run")
def run(request, run_id: int):
    return _run(get_object_or_404(ConsensusRun.objects.select_related("area"), pk=run_id))


@api.get(
    "/activity",
    response={200: ActivityOut, 400: ErrorOut},
    summary="Transfer throughput (all peers, and each) and cache use over the last hour, "
    "day or week",
)
def activity(request, span: str = charts.DEFAULT_SPAN):
    try:
        found = read_activity(charts.parse_span(span))
    except charts.BadSpan as exc:
        return Status(400, {"detail": str(exc)})
    starts = found.window.starts()
    return ActivityOut(
        span=found.span.name,
        start=found.window.start,
        end=found.window.end,
        step_seconds=int(found.window.step.total_seconds()),
        points=found.points,
        peers=[
            PeerActivityOut(
                peer=p.peer, sent=p.sent, received=p.received,
                points=[PeerPointOut(at=at, sent=sent, received=received)
                        for at, (sent, received) in zip(starts, p.rates, strict=True)],
            )  # fmt: skip
            for p in found.peers
        ],
    )


def _iso(epoch) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat()


def urls():
    """The API's URL patterns, answering 401 themselves rather than sending a script to the
    login page (LoginRequiredMiddleware); the docs and the schema ask for a login."""
    patterns, app, namespace = api.urls
    for pattern in patterns:
        if pattern.name not in ("api-root", "openapi-view", "openapi-json"):
            pattern.callback = login_not_required(pattern.callback)
    return patterns, app, namespace
