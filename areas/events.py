"""Live area events for the dashboard: consensus runs as they start, go on and finish."""

from typing import Literal, TypedDict

from django.db import transaction
from django.template.defaultfilters import filesizeformat

from peers.events import send_to_dashboards


class Progress(TypedDict):
    percent: int
    rate: float  # bytes a second, since the run started
    seconds_left: int | None


def progress(files: int, files_total: int, size: int, size_total: int, elapsed: float) -> Progress:
    """A running pull's completion: by bytes when it has content to take, else by files;
    never 100 until it has ended (what is left may take no bytes). Time left from the rate
    so far."""
    if size_total > 0:
        done = min(size / size_total, 1.0)
    elif files_total > 0:
        done = min(files / files_total, 1.0)
    else:
        done = 0.0
    rate = size / elapsed if elapsed > 0 else 0.0
    left = None
    if size_total > 0 and rate > 0:
        left = max(0, round((size_total - min(size, size_total)) / rate))
    return Progress(percent=min(int(done * 100), 99), rate=round(rate, 1), seconds_left=left)


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def progress_text(files: int, files_total: int, size: int, size_total: int, p: Progress) -> str:
    """As a page says it (live.js's progressText says the same)."""
    parts = [f"{files} of {files_total} files"]
    if size_total:
        parts.append(f"{filesizeformat(size)} of {filesizeformat(size_total)}")
    if p["rate"]:
        parts.append(f"{filesizeformat(p['rate'])}/s")
    if p["seconds_left"] is not None:
        parts.append(f"{_duration(p['seconds_left'])} left")
    return ", ".join(parts)


class RunRow(TypedDict):
    id: int
    area: str
    peer: str
    trigger: str
    status: str
    requested_at: str
    started_at: str | None
    finished_at: str | None
    files_in: int
    bytes_in: int
    files_out: int
    bytes_out: int
    conflicts: int
    error: str
    files_total: int | None
    bytes_total: int | None
    progress: Progress | None


class RunChanged(TypedDict):
    type: Literal["consensus.run"]
    run: RunRow


def run_row(run) -> RunRow:
    """A ConsensusRun as the dashboard shows it."""
    def iso(value):
        return value.isoformat() if value else None

    return RunRow(
        id=run.pk,
        area=run.area.name,
        peer=run.peer_name,
        trigger=run.trigger,
        status=run.status,
        requested_at=run.requested_at.isoformat(),
        started_at=iso(run.started_at),
        finished_at=iso(run.finished_at),
        files_in=run.files_in,
        bytes_in=run.bytes_in,
        files_out=run.files_out,
        bytes_out=run.bytes_out,
        conflicts=run.conflicts,
        error=run.error,
        files_total=run.files_total,
        bytes_total=run.bytes_total,
        progress=run.progress(),
    )


def run_changed(row: RunRow) -> None:
    """Send the run to open dashboards once the current transaction commits."""
    transaction.on_commit(lambda: send_to_dashboards(RunChanged(type="consensus.run", run=row)))


def history_changed(area_name: str) -> None:
    """Tell open pages that the area's recent changes moved on, once committed."""
    message = {"type": "areas.history", "area": area_name}
    transaction.on_commit(lambda: send_to_dashboards(message))
