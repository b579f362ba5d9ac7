"""Calls to the database and to peers, made from the mount's event loop in threads that last.

trio's own worker threads end after ten idle seconds, and with them the database
connection and the peerd client each thread keeps. The first request after a pause then
paid for new ones: a stat of the mount's root took 9-10 ms instead of 1, and the first
byte of a file read after a pause waited as long again. These threads stay for the life
of the mount. Calls to the disk alone stay on trio's threads (fs._io): they keep nothing.
"""

import concurrent.futures

import trio

# Reads ahead run several fetches at once; a read waits behind them no longer than on
# trio's own limiter.
THREADS = 16

_pool = concurrent.futures.ThreadPoolExecutor(THREADS, thread_name_prefix="mount")


async def run(function, *args):
    """function(*args) in a lasting thread; as trio.to_thread.run_sync, the caller is not
    cancelled while it runs."""
    future = _pool.submit(function, *args)
    done = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def wake(_future) -> None:
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:
            pass  # the loop ended meanwhile: no one waits

    future.add_done_callback(wake)
    with trio.CancelScope(shield=True):
        await done.wait()
    return future.result()
