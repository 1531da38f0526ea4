"""The robot records its own data: every decided grasp's Ta, Tb and decision into Calandra-layout shards.

``predictor_node`` with ``record_dir`` set hands each decided grasp to a :class:`GraspRecorder`
(:meth:`GraspRecorder.add`: a non-blocking put on a bounded queue; a full queue drops the grasp
and counts it, the decision never waits). One writer thread takes the queue in order: a grasp
waits up to ``outcome_timeout_s`` for the outcome (:meth:`GraspRecorder.outcome`, from a
``std_msgs/Bool`` topic after the lift), then becomes a trial:

- labelled → ``record_dir/grasps_<start>_NNN.h5``, what ``tgp train / probe / export --data
  record_dir`` read unchanged;
- no outcome in time (typically an ABORT: nothing was lifted) → ``record_dir/unlabelled/``,
  ``is_gripping`` 0 and ``node_label_source`` ``none`` (material for self-supervised training).

A trial (:func:`grasp_trial`, the same keys as ``tgp harvest``): ``gelsightA_before`` = Ta and
``gelsightA_during`` = Tb as the node received them (decoded RGB, full resolution),
``is_gripping``, ``object_name`` (unknown to the node: the grasp's own name, so an object split
degrades to a random one) and ``node_*`` attributes: both stamps, trigger time, grasp id,
reason, verdict, p, threshold, model id, latency, contact evidence, source, label source.

Crash safety: a shard holds at most ``trials_per_shard`` trials and is rewritten atomically
(temporary file + rename) after each trial, uncompressed (HDF5's gzip would run under Python's
GIL and stall the node's other threads). A killed node leaves every shard readable and loses
at most the trial being written and the grasps still queued; :meth:`GraspRecorder.close`
(node shutdown) writes those first. Grasps that ended before Tb (no part found, timeouts) have
no frames to record and are counted (``no_frames``). ROS-free; the node's wiring is in
``ros/grasp_runtime.py``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.decision import Decision
from tactile_grasp_predictor.gate import SnapshotReady

UNLABELLED = "unlabelled"


def grasp_trial(decision: Decision, snapshot: SnapshotReady, label: bool | None, object_name: str,
                source: str, label_source: str) -> dict[str, Any]:
    """Return one decided grasp as a Calandra-layout trial: Ta, Tb, label and the ``node_*`` attributes."""
    d, s = decision, snapshot
    return {
        "object_name": object_name.encode("utf-8", "replace"),
        "is_gripping": int(bool(label)),
        "gelsightA_before": np.ascontiguousarray(s.ta.pixels()),
        "gelsightA_during": np.ascontiguousarray(s.tb.pixels()),
        "node_ta_stamp": float(d.ta_stamp if d.ta_stamp is not None else s.ta.t),
        "node_tb_stamp": float(d.tb_stamp if d.tb_stamp is not None else s.tb.t),
        "node_t_trigger": float(s.t_trigger),
        "node_grasp_id": int(d.grasp_id),
        "node_reason": str(d.reason),
        "node_verdict": d.verdict.name,
        "node_p_success": float(d.p_success),
        "node_threshold": float(d.threshold),
        "node_model_id": str(d.model_id),
        "node_latency_ms": float(d.latency_ms),
        "node_contact": s.contact.summary() if s.contact is not None else "",
        "node_source": source,
        "node_label_source": label_source if label is not None else "none",
    }


@dataclass(frozen=True)
class RecorderConfig:
    """Where and how the node records (the ``record_*`` parameters)."""

    directory: Path
    queue_size: int = 16
    trials_per_shard: int = 10
    outcome_timeout_s: float = 5.0


@dataclass
class RecorderStats:
    """What the recorder did (diagnostics: ``record_*`` values)."""

    written: int = 0
    labelled: int = 0
    unlabelled: int = 0
    dropped: int = 0  # grasps not recorded: the queue was full
    no_frames: int = 0  # decided before Tb: nothing to record
    stray_outcomes: int = 0  # outcomes with no grasp waiting for one
    errors: int = 0
    last_error: str = ""
    shards: list[str] = field(default_factory=list)


class _Shard:
    """The open shard of one kind: its trials in memory, rewritten atomically after each one."""

    def __init__(self, directory: Path, stem: str, size: int) -> None:
        self.directory, self.stem, self.size = directory, stem, size
        self.index = 0
        self.trials: list[dict[str, Any]] = []

    def append(self, trial: dict[str, Any]) -> Path:
        from tactile_grasp_predictor.data.shard_writer import write_shard  # h5py: only when recording

        if len(self.trials) >= self.size:
            self.index += 1
            self.trials = []
        self.trials.append(trial)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.stem}_{self.index:03d}.h5"
        return write_shard(path, self.trials, compression_level=0)


class GraspRecorder:
    """Decided grasps → shards on a writer thread (see the module docstring). Thread-safe."""

    def __init__(self, config: RecorderConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.stats = RecorderStats()
        self._clock = clock
        self._queue: queue.Queue[tuple[str, Any, float]] = queue.Queue(maxsize=max(1, config.queue_size))
        self._lock = threading.Lock()
        stem = f"grasps_{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}"
        self._stem = stem
        directory = Path(config.directory)
        self._labelled = _Shard(directory, stem, config.trials_per_shard)
        self._unlabelled = _Shard(directory / UNLABELLED, stem, config.trials_per_shard)
        self._thread = threading.Thread(target=self._run, name="grasp-recorder", daemon=True)
        self._closed = False
        self._thread.start()

    # ------------------------------------------------------------------ callers' side (never blocks)
    def add(self, decision: Decision, snapshot: SnapshotReady | None) -> bool:
        """Queue a decided grasp with its Ta/Tb (``None``: decided before Tb, counted); False: not queued."""
        if snapshot is None:
            with self._lock:
                self.stats.no_frames += 1
            return False
        return self._put(("grasp", (decision, snapshot), self._clock()))

    def outcome(self, success: bool) -> None:
        """Queue the outcome of the last decided grasp (the lift held, or not)."""
        self._put(("outcome", bool(success), self._clock()))

    def _put(self, item: tuple[str, Any, float]) -> bool:
        if self._closed:
            return False
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            with self._lock:
                self.stats.dropped += 1
            return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (a waiting grasp without its outcome), stop the thread, close the files."""
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(("stop", None, self._clock()), timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)

    def values(self) -> dict[str, str]:
        """Return the diagnostics values: ``record_written``, ``record_dropped``, ..."""
        with self._lock:
            s = self.stats
            return {"record_dir": str(self.config.directory), "record_written": str(s.written),
                    "record_labelled": str(s.labelled), "record_unlabelled": str(s.unlabelled),
                    "record_dropped": str(s.dropped), "record_no_frames": str(s.no_frames),
                    "record_errors": str(s.errors), "record_last_error": s.last_error}

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        waiting: tuple[Decision, SnapshotReady, float] | None = None  # a grasp waiting for its outcome
        timeout = self.config.outcome_timeout_s
        while True:
            wait = None if waiting is None else max(0.0, waiting[2] + timeout - self._clock())
            try:
                kind, payload, t = self._queue.get(timeout=wait)
            except queue.Empty:
                assert waiting is not None
                self._write(waiting[0], waiting[1], None)
                waiting = None
                continue
            if kind == "grasp":
                if waiting is not None:
                    self._write(waiting[0], waiting[1], None)
                waiting = (*payload, t)
                if not timeout > 0:
                    self._write(waiting[0], waiting[1], None)
                    waiting = None
            elif kind == "outcome":
                if waiting is not None and t - waiting[2] <= timeout:
                    self._write(waiting[0], waiting[1], payload)
                    waiting = None
                else:
                    with self._lock:
                        self.stats.stray_outcomes += 1
            else:  # stop
                if waiting is not None:
                    self._write(waiting[0], waiting[1], None)
                return

    def _write(self, decision: Decision, snapshot: SnapshotReady, label: bool | None) -> None:
        trial = grasp_trial(decision, snapshot, label, f"{self._stem}:grasp{decision.grasp_id}",
                            f"{self._stem}:grasp{decision.grasp_id}", "outcome_topic")
        try:
            path = (self._labelled if label is not None else self._unlabelled).append(trial)
        except Exception as exc:  # a full disk, a bad frame: counted, the node goes on deciding
            with self._lock:
                self.stats.errors += 1
                self.stats.last_error = f"grasp {decision.grasp_id}: {type(exc).__name__}: {exc}"[:300]
            return
        with self._lock:
            s = self.stats
            s.written += 1
            s.labelled += label is not None
            s.unlabelled += label is None
            if str(path) not in s.shards:
                s.shards.append(str(path))

