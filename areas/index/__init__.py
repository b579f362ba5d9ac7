"""The index of the Real: scans, blobs, history, chunk reads, bulk SQL, locks."""

from areas.index.blobs import (
    FRESH_FIELDS,
    chunk_lists,
    chunk_window,
    entry_row,
    entry_values,
    insert_entry_rows,
    store_blobs,
)
from areas.index.chunk_reads import (
    blob_files,
    held_blobs,
    local_chunks,
    read_local_chunk,
    read_local_chunks,
    read_ranges,
)
from areas.index.history import Change, Kind
from areas.index.locks import (
    CONSENSUS,
    AreaBusy,
    busy_area_ids,
    index_lock,
    index_lock_within,
    release_advisory_lock,
    try_advisory_lock,
)
from areas.index.scanner import ScanResult, on_disk, scan_area, scan_paths, stat_fields
from areas.index.sql import rows
from areas.index.unreal import VersionGone, delete_unreal, put_emptied, put_realized
from areas.index.wire import (
    BadData,
    RemoteEvent,
    chunk_list_from_wire,
    chunk_list_to_wire,
    chunk_window_from_wire,
    chunk_window_to_wire,
    entry_to_wire,
    event_from_wire,
    event_row_to_wire,
)

__all__ = [
    "busy_area_ids",
    "AreaBusy",
    "BadData",
    "CONSENSUS",
    "Change",
    "FRESH_FIELDS",
    "Kind",
    "RemoteEvent",
    "ScanResult",
    "VersionGone",
    "blob_files",
    "held_blobs",
    "chunk_list_from_wire",
    "chunk_list_to_wire",
    "chunk_lists",
    "chunk_window",
    "chunk_window_from_wire",
    "chunk_window_to_wire",
    "delete_unreal",
    "entry_row",
    "entry_to_wire",
    "entry_values",
    "event_from_wire",
    "event_row_to_wire",
    "index_lock",
    "index_lock_within",
    "insert_entry_rows",
    "local_chunks",
    "on_disk",
    "put_emptied",
    "put_realized",
    "read_local_chunk",
    "read_local_chunks",
    "read_ranges",
    "release_advisory_lock",
    "rows",
    "scan_area",
    "scan_paths",
    "stat_fields",
    "store_blobs",
    "try_advisory_lock",
]
