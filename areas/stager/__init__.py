"""The stager: a process of the worker's own that fetches and stages large new files."""

from areas.stager.launcher import STAGING, NotStaged

__all__ = [
    "NotStaged",
    "STAGING",
]
