"""Live area events for the dashboard: consensus runs as they start and finish."""

from typing import Literal, TypedDict

from django.db import transaction

from peers.events import send_to_dashboards


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
    )


def run_changed(row: RunRow) -> None:
    """Send the run to open dashboards once the current transaction commits."""
    transaction.on_commit(lambda: send_to_dashboards(RunChanged(type="consensus.run", run=row)))
