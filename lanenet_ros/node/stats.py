"""The node's frame hand-off and its bookkeeping (no ROS): a one-slot mailbox and rate / latency counters.

The subscription callback only drops the newest message into the :class:`Mailbox`; a worker thread takes
it from there. A message that arrives while the previous one still waits replaces it (counted as replaced),
so the node always works on the newest frame and never builds a backlog, whatever the camera rate.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


class Mailbox:
    """A one-slot, thread-safe hand-off where a new item replaces the one not yet taken."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False

    def put(self, item: Any, wait: bool = False) -> bool:
        """Leave ``item`` for the worker.

        Args:
            item: not None.
            wait: first wait until the item before has been taken (or the mailbox closes): a hand-off between
                two workers where nothing is dropped, and the first waits for the second.

        Returns:
            True when an item not yet taken was replaced (never with ``wait``).
        """
        with self._cond:
            if wait:
                self._cond.wait_for(lambda: self._item is None or self._closed)
            replaced = self._item is not None
            self._item = item
            self._cond.notify_all()
        return replaced

    def take(self, timeout: float | None = None) -> Any:
        """Wait for an item and take it.

        Args:
            timeout: seconds to wait at most (None = until an item comes or the mailbox closes).

        Returns:
            The item, or None when the mailbox was closed or the wait timed out.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            self._cond.notify_all()  # a waiting put may go on
            return None if self._closed else item

    def close(self) -> None:
        """Wake the worker and make every later :meth:`take` return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class Period:
    """What happened since the previous diagnostics report."""

    seconds: float
    received: int
    processed: int
    replaced: int  # in the mailbox before the worker took them (the node was busy)
    lost: int  # before they reached the node, as the middleware reports (message-lost event)
    bad: int
    failed: int
    overlays: int
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def input_rate(self) -> float:
        """Frames received per second."""
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def lost_share(self) -> float:
        """Share of the frames sent to the node that the middleware lost on the way."""
        sent = self.received + self.lost
        return self.lost / sent if sent else 0.0

    @property
    def output_rate(self) -> float:
        """Frames processed and published per second."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0


class NodeStats:
    """Thread-safe counters (totals and per report period) and mean per-stage latencies."""

    COUNTERS = ("received", "processed", "replaced", "lost", "bad", "failed", "overlays")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals = dict.fromkeys(self.COUNTERS, 0)
        self._period = dict.fromkeys(self.COUNTERS, 0)
        self._stage_sum: dict[str, float] = defaultdict(float)
        self._since = time.monotonic()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (one of :attr:`COUNTERS`)."""
        with self._lock:
            self.totals[name] += n
            self._period[name] += n

    def frame_done(self, timings: dict[str, float]) -> None:
        """Record one processed frame and the seconds each stage took."""
        with self._lock:
            self.totals["processed"] += 1
            self._period["processed"] += 1
            for stage, seconds in timings.items():
                self._stage_sum[stage] += seconds

    def roll(self) -> Period:
        """The period since the previous call (mean milliseconds per stage), and start a new one."""
        with self._lock:
            now = time.monotonic()
            n = max(1, self._period["processed"])
            period = Period(now - self._since, **self._period,
                            stage_ms={k: 1000.0 * v / n for k, v in self._stage_sum.items()})
            self._period = dict.fromkeys(self.COUNTERS, 0)
            self._stage_sum.clear()
            self._since = now
        return period
