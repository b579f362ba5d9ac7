"""Running blocking database and disk work from peerd's event loop."""

import asyncio
from collections.abc import Callable
from typing import TypeVar

from django.db import close_old_connections

T = TypeVar("T")


def _in_thread(fn: Callable[..., T], *args, **kwargs) -> T:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def db(fn: Callable[..., T], *args, **kwargs) -> T:
    return await asyncio.to_thread(_in_thread, fn, *args, **kwargs)
