"""Watching the Real (inside peerd): inotify, scans after quiet moments, catching peers up."""

from areas.watch.catchup import area_states
from areas.watch.watcher import Watcher, watch_tree

__all__ = [
    "Watcher",
    "area_states",
    "watch_tree",
]
