"""Running blocking database and disk work from peerd's event loop, and work not awaited.

Two pools: `db` for quick work that never waits on a lock, `slow` for work that may wait long
on an area's lock (scans, pulls). Apart, waiting work cannot starve the answers it needs.
"""

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import close_old_connections

T = TypeVar("T")
_quick = ThreadPoolExecutor(max_workers=8, thread_name_prefix="peerd-quick")
_slow = ThreadPoolExecutor(max_workers=8, thread_name_prefix="peerd-slow")


def _in_thread(fn: Callable[..., T], *args) -> T:
    close_old_connections()
    try:
        return fn(*args)
    finally:
        close_old_connections()


async def db(fn: Callable[..., T], *args) -> T:
    return await asyncio.get_running_loop().run_in_executor(_quick, _in_thread, fn, *args)


async def slow(fn: Callable[..., T], *args) -> T:
    return await asyncio.get_running_loop().run_in_executor(_slow, _in_thread, fn, *args)


async def waiting(fn: Callable[..., T], *args) -> T:
    """Work that mostly waits (e.g. for a run to end), in its own thread, taking no pool slot."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def run() -> None:
        try:
            result = _in_thread(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(_settle, done, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, done, result, None)

    threading.Thread(target=run, name="peerd-waiting", daemon=True).start()
    return await done


def _settle(future: asyncio.Future, result, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


# Tasks started and not awaited (start_soon), held until done: the event loop holds its
# tasks only weakly, and one held by nothing else could be collected half-way ("Task was
# destroyed but it is pending!").
_started: set[asyncio.Task] = set()


def start_soon(work: Coroutine) -> None:
    """Run `work` in the background; no one waits for it."""
    task = asyncio.get_running_loop().create_task(work)
    _started.add(task)
    task.add_done_callback(_started.discard)
