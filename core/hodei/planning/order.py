"""The placement queue's order, in one place: higher job ``priority`` first, then arrival.

The daemon's queue, ``hodei plan`` and ``hodei simulate`` all sort by this key, so a plan places a batch in
the order the daemon would.
"""

from __future__ import annotations

from typing import Any


def queue_order(priority: int, arrival: Any, tiebreak: Any = 0) -> tuple[int, Any, Any]:
    """The sort key of a waiting request: higher ``priority`` first, then earlier ``arrival`` (a time or a
    sequence number), then ``tiebreak`` (an id: equal keys keep a stable order)."""
    return (-priority, arrival, tiebreak)


def priority_of(job: Any) -> int:
    """A job's queue priority (its requirements' ``priority``; 0 when the chain has no such field)."""
    value = getattr(job, "priority", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
