"""The fault suite: probes that break things on purpose and count what survived.

Each probe tries its fault `TRIES` times and records a row: probe, tries, survived, lost.
`make faults` sets REALIZE_FAULT_TRIES (10); inside `make test` each probe runs once.
The table is printed at the end of the run, and written to REALIZE_FAULT_REPORT if set.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

TRIES = int(os.environ.get("REALIZE_FAULT_TRIES", "1"))


@pytest.fixture(autouse=True)
def history_trimmed_at_once(monkeypatch):
    """Appliances keep no feed of recent changes past what peers need: history is trimmed
    as far as it can be, so the probes meet trimmed history as an older area would."""
    monkeypatch.setenv("REALIZE_HISTORY_KEPT", "0")


@dataclass
class Row:
    probe: str
    tries: int
    survived: int
    lost: int
    notes: str = ""


class FaultTable:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def record(self, probe: str, tries: int, survived: int, lost: int, notes: str = "") -> None:
        """One probe's outcome. `lost`: files or versions lost, partial or resurrected."""
        self.rows.append(Row(probe, tries, survived, lost, notes))

    def markdown(self) -> str:
        lines = ["| probe | tries | survived | lost | notes |", "|---|---:|---:|---:|---|"]
        lines += [
            f"| {r.probe} | {r.tries} | {r.survived} | {r.lost} | {r.notes} |" for r in self.rows
        ]
        return "\n".join(lines)


_table = FaultTable()


@pytest.fixture(scope="session")
def fault_table() -> FaultTable:
    return _table


def pytest_terminal_summary(terminalreporter):
    if not _table.rows:
        return
    terminalreporter.section("fault suite")
    terminalreporter.write_line(_table.markdown())
    report = os.environ.get("REALIZE_FAULT_REPORT")
    if report:
        Path(report).write_text(_table.markdown() + "\n")
