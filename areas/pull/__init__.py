"""Pulling a peer's changes: runs, the rule (decide), the applier, fetching, patches."""

from areas.pull.applier import collapse
from areas.pull.consensus import history_pages, pull_for_peer, run_consensus
from areas.pull.fetch import ChunkFetcher, ChunkSource, Unavailable, Wanted, batches, spans
from areas.pull.patches import check_keys, diff
from areas.pull.prefetch import Ahead
from areas.pull.prestage import FilesAhead
from areas.pull.rules import (
    CHANGED_HERE,
    DELETED_HERE,
    MINE_NEWER,
    MOVED_CHANGED_HERE,
    MOVED_DELETED_HERE,
    THEIRS_NEWER,
    Do,
    Step,
    Version,
    conflict_copy_path,
    decide,
    news,
)
from areas.pull.runs import consensus_now, consensus_report, start_consensus

__all__ = [
    "Ahead",
    "CHANGED_HERE",
    "ChunkFetcher",
    "ChunkSource",
    "DELETED_HERE",
    "Do",
    "FilesAhead",
    "MINE_NEWER",
    "MOVED_CHANGED_HERE",
    "MOVED_DELETED_HERE",
    "Step",
    "THEIRS_NEWER",
    "Unavailable",
    "Version",
    "Wanted",
    "batches",
    "check_keys",
    "collapse",
    "conflict_copy_path",
    "consensus_now",
    "consensus_report",
    "decide",
    "diff",
    "news",
    "history_pages",
    "pull_for_peer",
    "run_consensus",
    "spans",
    "start_consensus",
]
