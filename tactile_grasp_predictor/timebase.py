"""The time base of the core: which clock times a frame or a gripper sample.

The gate compares times of frames, gripper samples and clock ticks; they must come from one
clock. Two choices, the same live (``predictor_node``) and offline (``tgp bag eval``):

- ``header`` (default): a message's header stamp, the driver's capture time. A replayed bag
  then gives exactly the times it gave on the robot, whatever the scheduling delays of the
  node. An empty (zero) stamp falls back to the receive time mapped onto the stamp clock
  (receive time − the smallest recent latency, see below) and is counted.
- ``receive``: the receive time (the node's clock when the callback runs; the recorded log
  time in a bag). Stamps are then only reported.

Under ``header``, ``receive − stamp`` (the *offset*: transport latency plus the difference
between the driver's clock and the node's) is tracked per stream over a sliding window.
It serves three purposes:

- fallback: a message without a stamp gets ``receive − min offset`` (just ``receive`` before
  any stamp was seen, or when no stream has stamps);
- watchdogs: the node's clock mapped onto the stamp clock for ticks is
  ``receive − max offset − slack`` (:meth:`TimeBase.watchdog_time`), so a tick never runs ahead
  of a message still in flight and the timeouts fire as they do offline;
- health: an offset far from zero (an unsynchronised driver clock) or streams whose offsets
  disagree (one unsynchronised driver among synchronised ones) is reported by
  :meth:`TimeBase.problem`. A uniform offset is harmless: the gate only compares times with
  each other, never with the node's clock directly.

Example:
    >>> tb = TimeBase("header")
    >>> tb.resolve(100.0, 100.004, "image")  # the stamp
    100.0
    >>> round(tb.resolve(None, 100.05, "image"), 6)  # empty stamp: receive - min offset
    100.046
    >>> tb.fallbacks
    1
    >>> TimeBase("receive").resolve(100.0, 100.004, "image")
    100.004

"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

TimeBaseMode = Literal["header", "receive"]
TIME_BASES: tuple[str, ...] = ("header", "receive")


def valid_stamp(stamp: float | None) -> bool:
    """Return whether a header stamp is usable (not empty: a finite number > 0)."""
    return stamp is not None and math.isfinite(stamp) and stamp > 0.0


class _WindowExtrema:
    """Min and max of ``(t, value)`` pairs over the last ``window_s`` (monotonic deques, O(1) amortised)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._min: deque[tuple[float, float]] = deque()
        self._max: deque[tuple[float, float]] = deque()
        self.last: float | None = None

    def push(self, t: float, value: float) -> None:
        while self._min and self._min[-1][1] >= value:
            self._min.pop()
        self._min.append((t, value))
        while self._max and self._max[-1][1] <= value:
            self._max.pop()
        self._max.append((t, value))
        for q in (self._min, self._max):
            while q[0][0] < t - self.window_s and len(q) > 1:
                q.popleft()
        self.last = value

    @property
    def lo(self) -> float | None:
        return self._min[0][1] if self._min else None

    @property
    def hi(self) -> float | None:
        return self._max[0][1] if self._max else None


@dataclass
class TimeBase:
    """Message times on one clock (see the module docstring); one instance per node or replay.

    Attributes:
        mode: ``header`` or ``receive``.
        window_s: how far back (receive time) the offset extremes look.
        warn_offset_s: an offset (or a disagreement between streams) beyond this is a problem.
        watchdog_slack_s: under ``header``, how far the watchdog clock stays behind the newest
            possible stamp, beyond the largest recent offset.
        fallbacks: messages whose empty stamp fell back to the receive time (per stream in
            ``fallbacks_by_stream``).

    """

    mode: str = "header"
    window_s: float = 5.0
    warn_offset_s: float = 1.0
    watchdog_slack_s: float = 0.1
    fallbacks: int = 0
    fallbacks_by_stream: dict[str, int] = field(default_factory=dict)
    _offsets: dict[str, _WindowExtrema] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in TIME_BASES:
            from tactile_grasp_predictor.errors import ConfigError

            raise ConfigError(f"time_base: {self.mode!r} is not one of {', '.join(TIME_BASES)}")
        assert self.window_s > 0 and self.warn_offset_s > 0 and self.watchdog_slack_s >= 0

    # -- per message
    def resolve(self, stamp: float | None, receive_t: float, stream: str = "") -> float:
        """Return the core time of a message stamped ``stamp`` (``None``: empty) received at ``receive_t``."""
        if self.mode == "receive":
            return receive_t
        if stamp is not None and valid_stamp(stamp):
            ext = self._offsets.get(stream)
            if ext is None:
                ext = self._offsets[stream] = _WindowExtrema(self.window_s)
            ext.push(receive_t, receive_t - stamp)
            return stamp
        self.fallbacks += 1
        self.fallbacks_by_stream[stream] = self.fallbacks_by_stream.get(stream, 0) + 1
        return self.from_receive(receive_t)

    def from_receive(self, receive_t: float) -> float:
        """Map a receive-clock time onto the core clock (headerless messages, decision times)."""
        lo = self.min_offset()
        return receive_t - (lo if lo is not None else 0.0)

    def watchdog_time(self, receive_now: float) -> float:
        """Return the core time up to which timeouts may fire at receive-clock time ``receive_now``.

        ``receive``: ``receive_now``. ``header``: ``receive_now - max offset - slack``, so that
        a message still in flight (stamped earlier) is never overtaken by a tick.
        """
        if self.mode == "receive":
            return receive_now
        hi = self.max_offset()
        return receive_now - (hi if hi is not None else 0.0) - self.watchdog_slack_s

    # -- health
    def min_offset(self) -> float | None:
        """Smallest recent ``receive - stamp`` over all streams (``None`` before any stamp)."""
        los = [e.lo for e in self._offsets.values() if e.lo is not None]
        return min(los) if los else None

    def max_offset(self) -> float | None:
        """Largest recent ``receive - stamp`` over all streams (``None`` before any stamp)."""
        his = [e.hi for e in self._offsets.values() if e.hi is not None]
        return max(his) if his else None

    def offsets(self) -> dict[str, float]:
        """Return the latest ``receive - stamp`` per stream (s)."""
        return {k: e.last for k, e in sorted(self._offsets.items()) if e.last is not None}

    def problem(self) -> tuple[str, str]:
        """Return ``(severity, text)`` of a clock problem; ``("", "")`` if none.

        ``warn``: streams whose offsets disagree by more than ``warn_offset_s`` (drivers on
        different clocks: Ta/Tb choice compares times of different clocks). ``info``: all
        stamps far from the node clock but on one clock (harmless for the triggers).
        """
        if self.mode != "header":
            return "", ""
        last = self.offsets()
        if len(last) >= 2:
            (a, oa) = min(last.items(), key=lambda kv: kv[1])
            (b, ob) = max(last.items(), key=lambda kv: kv[1])
            if ob - oa > self.warn_offset_s:
                return "warn", (
                    f"header stamps of {a} and {b} are {ob - oa:.3f} s apart (different clocks?): "
                    f"synchronise the drivers' clocks or use time_base receive"
                )
        far = {k: v for k, v in last.items() if abs(v) > self.warn_offset_s}
        if far:
            k, v = max(far.items(), key=lambda kv: abs(kv[1]))
            return "info", (
                f"header stamps of {k} are {v:+.3f} s off the node clock (unsynchronised driver "
                f"clock?); triggers use the stamps, watchdogs follow the offset"
            )
        return "", ""
