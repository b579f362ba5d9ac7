"""The cyclic garbage collector in long-lived processes (peerd, the worker).

A pull or a scan makes objects by the hundred thousand, few of them in cycles. With the
default thresholds the collector runs every 700 new objects and, every so often, walks the
whole heap, Django's own objects included, thousands of which date from start-up and never
go away. Frozen after start-up, those are not walked again; in the worker, frozen before its
children are forked, neither are they written to by a child's collections (which made the
child fault in a private copy of every page holding one).
"""

import gc

# Young objects collected every this many allocations (default 700); the older generations
# as by default.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Called once the process has started up (in the worker, before it forks)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
