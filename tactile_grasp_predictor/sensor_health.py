"""Sensor health: whether the gel's no-contact frames still look like the training data's.

A GelSight's image of nothing changes when its gel wears, its lighting ages or a different
sensor is mounted, and a model trained on the old images then judges grasps it has never
seen the like of. Without contact the image is the sensor alone, so its statistics can be
compared with those of the training data's no-contact (Ta) frames. This module holds both
halves, without ROS:

- :class:`SensorReference`: per-channel mean brightness and contrast of no-contact frames
  (mean and spread over the frames), computed at export (:meth:`SensorReference.from_frames`)
  and stored in the bundle's manifest under ``metrics.sensor_reference``
  (:meth:`SensorReference.from_manifest` reads it back; older bundles have none).
- :class:`SensorHealth`: the node's monitor. It keeps the statistics of recent no-contact
  frames (each grasp's Ta, and while the gripper is open one frame a second) and reports,
  as a :class:`~tactile_grasp_predictor.session.Health`, how far their mean lies from the
  reference in reference standard deviations: WARN above the node's ``sensor_drift_warn``.

The statistics do not depend on the frame size (a bundle's frames are resized, the robot's
are not): channel means and standard deviations of an area-averaged 64 x 48 copy.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> frames = [np.clip(rng.normal(120, 20, (48, 64, 3)), 0, 255).astype(np.uint8) for _ in range(20)]
    >>> ref = SensorReference.from_frames(frames)
    >>> monitor = SensorHealth(ref, warn=4.0)
    >>> for f in frames[:5]:
    ...     monitor.add(f)
    >>> monitor.report().level
    'ok'
    >>> for _ in range(5):
    ...     monitor.add(np.full((48, 64, 3), 200, np.uint8))  # much brighter, no texture
    >>> h = monitor.report()
    >>> h.level, h.message.split(":")[0]
    ('warn', 'sensor drift')

"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tactile_grasp_predictor.session import Health

#: The statistics, in order: per-channel mean and per-channel standard deviation (0-255 units).
FEATURES = ("mean_r", "mean_g", "mean_b", "contrast_r", "contrast_g", "contrast_b")
#: The statistics are taken on a copy of this size (width, height): about 1 ms for 640 x 480.
SIZE = (64, 48)
#: Spread below this (0-255 units) is taken as this: identical training frames must not make 1 unit a drift.
MIN_SPREAD = 2.0
#: Recent no-contact frames the monitor averages.
WINDOW = 20
#: Frames before the monitor judges (fewer: it reports "collecting").
MIN_FRAMES = 3


def frame_features(rgb: np.ndarray) -> np.ndarray:
    """Return the :data:`FEATURES` of one RGB uint8 ``H x W x 3`` frame (float64, 6).

    On an area-averaged ``SIZE`` copy: every source pixel counts (a strided subsample would
    alias with the gel's marker-dot grid), and the statistics do not depend on the frame size.
    """
    import cv2

    assert rgb.ndim == 3 and rgb.shape[2] == 3, rgb.shape
    small = cv2.resize(np.ascontiguousarray(rgb), SIZE, interpolation=cv2.INTER_AREA)
    sample = small.reshape(-1, 3).astype(np.float32)  # n x 3
    return np.concatenate([sample.mean(axis=0), sample.std(axis=0)]).astype(np.float64)


@dataclass(frozen=True)
class SensorReference:
    """No-contact frame statistics of the training data: mean and spread of each feature over frames."""

    n_frames: int
    mean: tuple[float, ...]  # one per FEATURES entry
    spread: tuple[float, ...]  # standard deviation over frames

    @staticmethod
    def from_frames(frames: Iterable[np.ndarray]) -> SensorReference:
        """Compute the reference from no-contact RGB frames (e.g. a training set's Ta frames)."""
        feats = np.array([frame_features(f) for f in frames])  # n x 6
        if feats.size == 0:
            raise ValueError("sensor reference: no frames")
        return SensorReference(len(feats), tuple(float(v) for v in feats.mean(axis=0)),
                               tuple(float(v) for v in feats.std(axis=0)))

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form (``metrics.sensor_reference``)."""
        return {"features": list(FEATURES), "n_frames": self.n_frames, "mean": list(self.mean),
                "spread": list(self.spread)}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> SensorReference:
        """Read the manifest form; ``ValueError`` naming the field that is wrong."""
        if list(d.get("features", [])) != list(FEATURES):
            raise ValueError(f"sensor_reference.features: {d.get('features')!r}, expected {list(FEATURES)}")
        values = {}
        for key in ("mean", "spread"):
            v = d.get(key)
            if not isinstance(v, list) or len(v) != len(FEATURES) or not all(
                    isinstance(x, int | float) and math.isfinite(x) for x in v):
                raise ValueError(f"sensor_reference.{key}: {len(FEATURES)} finite numbers expected, "
                                 f"got {v!r}")
            values[key] = tuple(float(x) for x in v)
        n = d.get("n_frames")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"sensor_reference.n_frames: {n!r} is not a positive integer")
        return SensorReference(n, values["mean"], values["spread"])

    @staticmethod
    def from_manifest(manifest: Mapping[str, Any] | None) -> tuple[SensorReference | None, str]:
        """Return the bundle's reference (``None`` where it has none or it is unreadable) and why not."""
        metrics = (manifest or {}).get("metrics") or {}
        d = metrics.get("sensor_reference") if isinstance(metrics, Mapping) else None
        if d is None:
            return None, "the bundle has no sensor statistics (exported before they were recorded)"
        try:
            return SensorReference.from_json(d), ""
        except ValueError as exc:
            return None, f"the bundle's sensor statistics are unreadable: {exc}"


class SensorHealth:
    """Recent no-contact frames against a :class:`SensorReference` (see the module docstring)."""

    def __init__(self, reference: SensorReference | None, warn: float, why_none: str = "",
                 window: int = WINDOW, idle_period_s: float = 1.0) -> None:
        self.reference = reference
        self.warn = warn
        self.why_none = why_none or "no model loaded"
        self.idle_period_s = idle_period_s
        self._recent: deque[np.ndarray] = deque(maxlen=window)
        self._last_idle = -math.inf
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        """Take a no-contact frame (a grasp's Ta)."""
        if self.reference is not None:
            self._recent.append(frame_features(rgb))
            self.frames += 1

    def add_idle(self, rgb: np.ndarray, t: float) -> None:
        """Take a frame seen while the gripper is open, at most one per ``idle_period_s`` of time ``t``."""
        if t - self._last_idle >= self.idle_period_s or t < self._last_idle:
            self._last_idle = t
            self.add(rgb)

    def drift(self) -> tuple[float, str]:
        """Return the largest drift over the features (reference spreads) and that feature's name."""
        assert self.reference is not None and self._recent
        now = np.mean(np.array(self._recent), axis=0)
        ref = np.array(self.reference.mean)
        spread = np.maximum(np.array(self.reference.spread), MIN_SPREAD)
        z = np.abs(now - ref) / spread
        k = int(np.argmax(z))
        return float(z[k]), FEATURES[k]

    def report(self) -> Health:
        """Return the sensor's diagnostic status (``ok`` / ``warn``; never ``error``: grasps go on)."""
        if self.reference is None:
            return Health("ok", f"sensor check skipped: {self.why_none}", {"sensor_reference": "none"})
        values = {"sensor_reference": f"{self.reference.n_frames} training frames",
                  "no_contact_frames": str(self.frames), "sensor_drift": "", "sensor_drift_feature": ""}
        if len(self._recent) < MIN_FRAMES:
            return Health("ok", f"collecting no-contact frames ({len(self._recent)}/{MIN_FRAMES})", values)
        z, name = self.drift()
        k = FEATURES.index(name)
        now = float(np.mean([f[k] for f in self._recent]))
        values["sensor_drift"] = f"{z:.2f}"
        values["sensor_drift_feature"] = name
        if z > self.warn:
            ref, spread = self.reference.mean[k], self.reference.spread[k]
            return Health("warn", f"sensor drift: {name} {now:.1f} vs {ref:.1f} ± {spread:.1f} in training "
                          f"({z:.1f} spreads): gel wear, lighting or a different sensor?", values)
        return Health("ok", "no-contact frames match the training data", values)
