"""Where a decision's time goes inside the node: per-stage durations of the last decisions.

The node's adapter (:mod:`tactile_grasp_predictor.ros.grasp_runtime`) reads ``perf_counter``
at the edges of each stage of a model decision and hands the readings here;
:meth:`StageTimes.values` gives their p50 / p99 for the diagnostics (``stage_<name>_ms``),
which ``benchmarks/bench_node.py`` prints beside its own DDS figures. Stages, in order:

- ``decode``: the input callback that made Tb known, from its start to the frame in RGB
  (zero when that input was not a frame: a tick or a gripper message);
- ``feed``: then to the job queued (the lock, the session's rules);
- ``queue``: queued → taken by the inference thread;
- ``copy``: Ta / Tb owned (a copy only of strided views, e.g. ``bgr8``);
- ``predict``: ``Predictor.predict`` (preprocessing + the model);
- ``publish``: the lock, the session's completion and the decision published;
- ``node``: the callback's start → published (the sum), and ``overhead``: ``node`` less ``predict``.

No ROS here. Example::

    times = StageTimes()
    times.add({"decode": 0.4, "feed": 0.1, "predict": 6.0})  # ms
    times.values()["stage_predict_ms"]  # 'p50 6.00 / p99 6.00 (1)'
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

from tactile_grasp_predictor.metrics import percentiles

#: The stages of one decision, in the order they happen, then the two totals.
STAGES = ("decode", "feed", "queue", "copy", "predict", "publish", "node", "overhead")


def stage_durations(marks: Mapping[str, float]) -> dict[str, float]:
    """Turn ``perf_counter`` readings (s) at each stage's end into stage durations (ms).

    ``marks`` holds ``start`` (the callback began) and the end of each stage of
    :data:`STAGES` reached, in order; a missing mark is a stage of zero length.
    """
    out: dict[str, float] = {}
    last = marks["start"]
    for name in STAGES[:6]:
        t = marks.get(name, last)
        out[name] = (t - last) * 1e3
        last = t
    out["node"] = (last - marks["start"]) * 1e3
    out["overhead"] = out["node"] - out["predict"]
    return out


class StageTimes:
    """The stage durations (ms) of the last ``window`` decisions; thread-safe."""

    def __init__(self, window: int = 2000) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}

    def add(self, durations: Mapping[str, float]) -> None:
        """Record one decision's stage durations (ms); unknown names are ignored."""
        with self._lock:
            for name, ms in durations.items():
                if name in self._runs:
                    self._runs[name].append(float(ms))

    def values(self) -> dict[str, str]:
        """Return ``stage_<name>_ms``: ``"p50 x / p99 y (n)"`` per stage with any decision, ms."""
        with self._lock:
            runs = {k: list(v) for k, v in self._runs.items() if v}
        out = {}
        for name, run in runs.items():
            q = percentiles(run, (50, 99))
            out[f"stage_{name}_ms"] = f"p50 {q['p50']:.2f} / p99 {q['p99']:.2f} ({len(run)})"
        return out
