"""What the pages show of areas: counts, the latest consensus runs, open conflicts."""

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from areas.models import Area, Conflict, ConsensusRun, Entry


def _count(queryset: QuerySet) -> Coalesce:
    counted = queryset.order_by().values("area").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def with_counts(areas: QuerySet) -> QuerySet:
    """Areas with `files` (entries holding a blob) and `open_conflicts` annotated."""
    return areas.annotate(
        files=_count(Entry.objects.filter(area=OuterRef("pk"), blob_hash__isnull=False)),
        open_conflicts=_count(Conflict.objects.filter(area=OuterRef("pk"), resolved_at=None)),
    )


def areas_overview() -> list[Area]:
    """Every area with its counts, `last_run` (its latest consensus run, or None) and
    `last_run_at` (when that run last moved)."""
    latest = ConsensusRun.objects.filter(area=OuterRef("pk")).order_by("-requested_at", "-pk")
    areas = list(
        with_counts(Area.objects.all()).annotate(last_run_id=Subquery(latest.values("pk")[:1]))
    )
    runs = ConsensusRun.objects.in_bulk([a.last_run_id for a in areas if a.last_run_id])
    for area in areas:
        area.last_run = run = runs.get(area.last_run_id)
        area.last_run_at = run and (run.finished_at or run.started_at or run.requested_at)
    return areas


def area_detail(name: str) -> Area | None:
    return with_counts(Area.objects.filter(name=name)).first()


def recent_runs(area: Area | None = None, limit: int = 20) -> list[ConsensusRun]:
    runs = ConsensusRun.objects.select_related("area").order_by("-requested_at", "-pk")
    if area is not None:
        runs = runs.filter(area=area)
    return list(runs[:limit])


def open_conflicts(area: Area, limit: int = 200) -> list[Conflict]:
    return list(area.conflicts.filter(resolved_at=None).order_by("-created_at")[:limit])
