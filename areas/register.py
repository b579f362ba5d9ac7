"""Adding areas: a name and a directory that no other area (nor this appliance) uses."""

from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from areas.models import Area
from peers.events import send_to_dashboards
from realize_site.lib import name_problem


class AreaError(ValueError):
    """Bad input for an area; its message is one line meant for a person."""


def check_name(name: str) -> str:
    name = name.strip()
    problem = name_problem(name, "area")
    if problem:
        raise AreaError(problem)
    return name


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_path(path: str, mount: Path | None = None) -> Path:
    if not path or not path.strip():
        raise AreaError("an area needs a directory")
    given = Path(path).expanduser()
    if not given.exists():
        raise AreaError(f"{path} does not exist")
    if not given.is_dir():
        raise AreaError(f"{path} is not a directory")
    resolved = given.resolve()
    if resolved == Path("/"):
        raise AreaError("the root directory cannot be an area")
    for area in Area.objects.all():
        other = Path(area.path)
        if _overlaps(resolved, other):
            raise AreaError(f"{resolved} overlaps area {area.name!r} at {other}")
    home = Path(settings.REALIZE_HOME).resolve()
    if _overlaps(resolved, home):
        raise AreaError(f"{resolved} overlaps this appliance's home {home}")
    if mount is not None and _overlaps(resolved, mount.resolve()):
        raise AreaError(f"{resolved} overlaps the mount at {mount}")
    return resolved


def add_area(name: str, path: str, mode: str = Area.Mode.REAL) -> Area:
    name = check_name(name)
    if mode not in Area.Mode.values:
        raise AreaError(f"mode must be real or unreal, not {mode!r}")
    if Area.objects.filter(name=name).exists():
        raise AreaError(f"an area named {name!r} already exists")
    resolved = check_path(path)
    try:
        with transaction.atomic():
            area = Area.objects.create(name=name, path=str(resolved), mode=mode)
            Area.tell_listeners()
            transaction.on_commit(lambda: send_to_dashboards({"type": "areas.changed"}))
    except IntegrityError:
        raise AreaError(f"an area named {name!r} or at {resolved} was just added") from None
    return area
