"""A simulated grasp trial as the streams drivers would publish: gripper width over time and frames.

One type for every consumer of simulated streams: the simulated robot node replays it over
DDS (``ros/sim_robot_node.py``), ``tgp bag record`` writes it into rosbag2 bags
(``training/bag_record.py``, which also makes synthetic ones). It is built from a shard
reader's :class:`~tactile_grasp_predictor.data.calandra.Trial` with the simulator's ``sim_*``
extras (:meth:`TrialStreams.from_trial`) and loaded from shard files or directories one trial
at a time (:func:`load_trial_streams`).

Example::

    for tr in load_trial_streams(["data/sim_streams"], limit=5):
        print(tr.source, tr.label, len(tr.frame_t), tr.t_lift)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tactile_grasp_predictor.data.calandra import CalandraShard, Trial
from tactile_grasp_predictor.errors import DatasetError

#: The simulator's gripper trajectory (``(T,)`` seconds, ``(T,)`` metres).
GRIPPER_KEYS: tuple[str, ...] = ("sim_gripper_time", "sim_gripper_width")
#: The left (A) GelSight stream and its capture times.
LEFT_STREAM_KEYS: tuple[str, ...] = ("sim_gelsightA_stream", "sim_gelsightA_stream_time")
#: The right (B) GelSight stream and its capture times.
RIGHT_STREAM_KEYS: tuple[str, ...] = ("sim_gelsightB_stream", "sim_gelsightB_stream_time")
#: The left key images a stream is made from when a trial has no recorded stream.
KEY_IMAGES: tuple[str, ...] = ("gelsightA_before", "gelsightA_during", "gelsightA_after")


@dataclass
class TrialStreams:
    """One trial as time series, times in seconds from the trial start.

    Attributes:
        source: where the trial came from (``<shard>:i<n>`` or ``synthetic:<k>``).
        label: the true outcome (the lift succeeded), ``None`` if unknown.
        gripper_t, gripper_w: the finger opening trajectory ``# T``, metres as the trial
            records it (a driver reports it clamped at 0: :attr:`reported_width`).
        frame_t: capture times of the GelSight frames ``# F``.
        frames_left: ``# F x H x W x 3`` uint8 RGB left (A) frames; ``frames_right`` the right
            (B) ones, or ``None``.
        t_lift: when the robot lifts (a closed loop waits for the decision just before).
        synthetic_stream: the frames were made from the before/during/after key images.

    """

    source: str
    label: bool | None
    gripper_t: np.ndarray
    gripper_w: np.ndarray
    frame_t: np.ndarray
    frames_left: np.ndarray
    t_lift: float
    frames_right: np.ndarray | None = None
    synthetic_stream: bool = False

    def __post_init__(self) -> None:
        assert self.gripper_t.ndim == 1 and self.gripper_t.shape == self.gripper_w.shape, self.source  # T
        assert self.frames_left.ndim == 4 and self.frames_left.shape[-1] == 3, self.source  # F x H x W x 3
        assert self.frames_left.dtype == np.uint8, self.source
        assert len(self.frame_t) == len(self.frames_left) > 0, self.source
        assert self.frames_right is None or self.frames_right.shape[0] == len(self.frame_t), self.source
        assert np.all(np.diff(self.gripper_t) >= 0) and np.all(np.diff(self.frame_t) >= 0), self.source

    @property
    def t_end(self) -> float:
        """The last event of the trial."""
        return float(max(self.gripper_t[-1], self.frame_t[-1]))

    @property
    def reported_width(self) -> np.ndarray:
        """``# T`` the opening as a WSG-50 driver reports it: never below 0."""
        return np.maximum(self.gripper_w, 0.0)

    @property
    def open_width(self) -> float:
        """The reported opening at the trial start (the gripper returns to it between trials)."""
        return float(self.reported_width[0])

    def held_for_decision(self, hold_s: float, camera_rate_hz: float = 30.0,
                          gripper_rate_hz: float = 50.0) -> TrialStreams:
        """Return the trial as a closed-loop robot shows it while it waits for the decision.

        ``sim_robot_node`` (closed loop) plays the streams up to the lift, then holds: it keeps
        publishing the last frame before ``t_lift`` at ``camera_rate_hz`` and the last width at
        ``gripper_rate_hz`` until the decision comes. This view ends with ``hold_s`` of that hold
        (its ``t_lift`` at the hold's end), so a trigger that fires after ``t_lift`` sees held
        frames, as live, never the lift. The right stream, if any, is held the same way.
        """
        g, f = self.gripper_t < self.t_lift, self.frame_t < self.t_lift
        if not g.any() or not f.any():
            return self
        tg = self.t_lift + np.arange(0.0, hold_s, 1.0 / gripper_rate_hz)
        tf = self.t_lift + np.arange(0.0, hold_s, 1.0 / camera_rate_hz)
        last = int(np.flatnonzero(f)[-1])

        def held(frames: np.ndarray) -> np.ndarray:
            return np.concatenate([frames[f], np.repeat(frames[last:last + 1], len(tf), axis=0)])

        return TrialStreams(
            self.source, self.label, np.concatenate([self.gripper_t[g], tg]),
            np.concatenate([self.gripper_w[g], np.full(len(tg), self.gripper_w[g][-1])]),
            np.concatenate([self.frame_t[f], tf]), held(self.frames_left), self.t_lift + hold_s,
            None if self.frames_right is None else held(self.frames_right), self.synthetic_stream)

    @classmethod
    def from_trial(cls, trial: Trial, camera_rate_hz: float = 30.0) -> TrialStreams:
        """From a reader ``Trial`` with the simulator's ``sim_*`` extras.

        Needs ``sim_gripper_time``, ``sim_gripper_width`` and ``sim_t_lift``. Uses the recorded
        GelSight A stream when present (and the B stream when read); otherwise builds a stream
        from the key images (``before`` until the closing starts at ``sim_t_close``, ``during``
        while closed, ``after`` from ``sim_t_after``) at ``camera_rate_hz`` and marks it
        ``synthetic_stream``. Raises :class:`DatasetError` naming the trial and the key.
        """
        ex = trial.extras
        src = trial.source
        for key in GRIPPER_KEYS:
            if key not in ex:
                raise DatasetError(f"{src}: no {key} (simulate with the gripper trajectory)")
        gt = np.asarray(ex["sim_gripper_time"], dtype=np.float64)
        gw = np.asarray(ex["sim_gripper_width"], dtype=np.float64)
        t_lift = float(ex.get("sim_t_lift", np.nan))
        if not math.isfinite(t_lift):
            raise DatasetError(f"{src}: no sim_t_lift attribute")
        label = bool(trial.is_gripping)
        if all(k in ex for k in LEFT_STREAM_KEYS):
            ft = np.asarray(ex["sim_gelsightA_stream_time"], dtype=np.float64)
            left = np.asarray(ex["sim_gelsightA_stream"])
            right = np.asarray(ex["sim_gelsightB_stream"]) if "sim_gelsightB_stream" in ex else None
            return cls(src, label, gt, gw, ft, left, t_lift, right)
        images = trial.images
        if any(k not in images for k in KEY_IMAGES):
            raise DatasetError(f"{src}: neither sim_gelsightA_stream nor the key images {KEY_IMAGES}")
        t_close = float(ex.get("sim_t_close", gt[0]))
        t_after = float(ex.get("sim_t_after", gt[-1]))
        ft = np.arange(gt[0], max(gt[-1], t_after) + 1e-9, 1.0 / camera_rate_hz)
        which = np.where(ft < t_close, 0, np.where(ft < t_after, 1, 2))
        stack = np.stack([images[k] for k in KEY_IMAGES])  # 3 x H x W x 3
        return cls(src, label, gt, gw, ft, stack[which], t_lift, synthetic_stream=True)


def _shard_files(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.h5")) if p.is_dir() else [p])
    if not files:
        raise DatasetError(f"no shards in {', '.join(map(str, paths)) or '(no paths)'}")
    return files


def _read(shard: CalandraShard, index: int, right: bool, require_streams: bool) -> Trial:
    """Read the keys :meth:`TrialStreams.from_trial` uses that the trial has."""
    stored = set(shard.keys(index))
    streams = LEFT_STREAM_KEYS + (RIGHT_STREAM_KEYS if right else ())
    if require_streams:
        missing = [k for k in streams if k not in stored]
        if missing:
            raise DatasetError(
                f"{shard.source(index)}: no {missing}; simulate with --streams to record bags"
            )
    keys = GRIPPER_KEYS + (streams if all(k in stored for k in LEFT_STREAM_KEYS) else KEY_IMAGES)
    return shard.read(index, keys=[k for k in keys if k in stored])  # from_trial names what is missing


def load_trial_streams(
    paths: Sequence[str | Path],
    limit: int | None = None,
    *,
    right: bool = False,
    camera_rate_hz: float = 30.0,
    require_streams: bool = False,
) -> Iterator[TrialStreams]:
    """Trials of simulated shards (files, or directories of ``*.h5``), one at a time, in order.

    Args:
        paths: shard files or directories.
        limit: yield at most this many trials (``None``: all).
        right: also read the right (B) stream where the trial has one.
        camera_rate_hz: frame rate of a stream made from key images (trials without streams).
        require_streams: raise :class:`DatasetError` for a trial without the recorded stream(s)
            (what a bag recording needs) instead of making one from the key images.

    Raises:
        DatasetError: naming the shard or trial (no shards, a bad file, a missing key).

    """
    files = _shard_files(paths)
    n = 0
    for f in files:
        with CalandraShard(f) as shard:
            for i in shard.trial_indices():
                if limit is not None and n >= limit:
                    return
                yield TrialStreams.from_trial(_read(shard, i, right, require_streams), camera_rate_hz)
                n += 1
