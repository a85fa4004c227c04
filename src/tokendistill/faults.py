"""Crash points for the interruption tests: the process kills itself (SIGKILL) at a named point.

A test sets ``TOKENDISTILL_KILL_AT=point:n`` and the n-th time the run reaches ``point`` it dies as abruptly
as a power cut would, so that resume is tested at exact places (mid-write included) instead of at whatever
moment a timer happens to hit. Unset, this costs one dictionary lookup per call.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

ENVIRONMENT_VARIABLE = "TOKENDISTILL_KILL_AT"
_reached: Counter[str] = Counter()


def crash_point(point: str, before_dying: Callable[[], None] | None = None) -> None:
    """Die here if the test asked for it; ``before_dying`` first leaves the damage a real crash could leave
    at this point (half a write), which the normal path never does."""
    wanted = os.environ.get(ENVIRONMENT_VARIABLE)
    if not wanted:
        return
    name, _, count = wanted.partition(":")
    if name != point:
        return
    _reached[point] += 1
    if _reached[point] == int(count or 1):
        if before_dying is not None:
            before_dying()
        os.kill(os.getpid(), signal.SIGKILL)
