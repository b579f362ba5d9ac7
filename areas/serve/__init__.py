"""The peer API: what this peer answers to other peers about its areas."""

from areas.serve.service import AreaService

__all__ = [
    "AreaService",
]
