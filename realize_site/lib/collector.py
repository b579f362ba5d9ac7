"""The cyclic garbage collector in long-lived processes (peerd, the worker, the mount).

A pull or scan makes many objects, few in cycles, so young collections run less often.
Start-up objects are frozen: never walked again, and in the worker, frozen before forking,
never written by a child's collections (which would copy their pages into each child).
"""

import gc

# Young objects collected every this many allocations; the older generations as by default.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Called once the process has started up (in the worker, before it forks)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
