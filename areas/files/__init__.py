"""Files on disk, no database: chunking, hashing, staged files, durability, system calls."""

from areas.files.chunking import (
    MAX_SIZE,
    MIN_SIZE,
    ChunkRef,
    Hashed,
    chunk_hash,
    hash_bytes,
    single_chunk,
)
from areas.files.durable import remove_empty_parents, sync_directories
from areas.files.paths import TEMP_PREFIX, AreaPaths, check_relative_path, is_ignored
from areas.files.staging import (
    CorruptContent,
    DiskChanged,
    Staged,
    check_disk,
    clean_temporary_files,
    create_staged,
    expose,
    make_directories,
    seal_staged,
    stage_file,
    staging_directory,
    staging_path,
    sync_staged,
    temporary_name,
)
from areas.files.writers import content_writer

__all__ = [
    "AreaPaths",
    "ChunkRef",
    "CorruptContent",
    "DiskChanged",
    "Hashed",
    "MAX_SIZE",
    "MIN_SIZE",
    "Staged",
    "TEMP_PREFIX",
    "check_disk",
    "check_relative_path",
    "chunk_hash",
    "clean_temporary_files",
    "content_writer",
    "create_staged",
    "expose",
    "hash_bytes",
    "is_ignored",
    "make_directories",
    "remove_empty_parents",
    "seal_staged",
    "single_chunk",
    "stage_file",
    "staging_directory",
    "staging_path",
    "sync_directories",
    "sync_staged",
    "temporary_name",
]
