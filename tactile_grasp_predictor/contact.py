"""Contact evidence: did a closing touch something? The gel's deformation, HOLDING, effort.

A closing that stops without touching anything (a pick pipeline pre-shaping the open
gripper to a pre-grasp width, a pause mid-closing) is no grasp and gets no decision. The
:class:`~tactile_grasp_predictor.gate.GraspGate` asks a :class:`ContactJudge` whenever a closing
ends short of fully closed (Tb taken, the gripper opening before Tb, Tb never coming); the
judge says contact when any of these holds:

- the firmware reported HOLDING during this grasp;
- the fingers' effort (``JointState.effort``) is at or above ``contact_effort`` (if set);
- the gel deformed: :func:`deformation` between Ta and the later frame reaches the threshold,
  ``max(contact_min_deformation, contact_noise_factor x noise)``, where the noise is the same
  measure between the two frames before the onset (no contact yet: sensor noise, flicker),
  the lower quartile over the last closings (an odd pair, such as a gel still relaxing from
  the last grasp, only ever raises a sample, so the low ones are the sensor's).

A frame that cannot be decoded leaves the question open (``contact`` ``None``): the gate then
treats the closing as a grasp, so that the model's own check names the bad frame.

Example:
    >>> import numpy as np
    >>> rest = np.full((48, 64, 3), 120, np.uint8)
    >>> pressed = rest.copy()
    >>> pressed[20:30, 25:40] = 180  # a contact patch
    >>> round(deformation(rest, pressed), 1), deformation(rest, rest)
    (60.0, 0.0)

"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tactile_grasp_predictor.errors import FrameError

if TYPE_CHECKING:
    from tactile_grasp_predictor.gate import Frame
    from tactile_grasp_predictor.tracker import TriggerConfig

#: Longest side of the thumbnails :func:`deformation` compares (area averaging removes pixel noise).
THUMBNAIL_SIDE = 32
#: Share of the thumbnail's most changed pixels whose mean is the deformation (a contact is local).
TOP_SHARE = 0.02


#: The last few thumbnails, by the frame array's identity (the array is held: its id stays its own).
_THUMBNAILS: deque[tuple[np.ndarray, tuple[int, int], np.ndarray]] = deque(maxlen=4)


def _thumbnail(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (H x W x C uint8) area-averaged to ``size`` (width, height), float32.

    A frame judged twice (Ta: against the frame before it, then against Tb) is shrunk once.
    """
    import cv2

    for held, held_size, thumb in tuple(_THUMBNAILS):
        if held is image and held_size == size:
            return thumb
    small = image
    if (image.shape[1], image.shape[0]) != size:
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    thumb = small.astype(np.float32)
    _THUMBNAILS.append((image, size, thumb))
    return thumb


def deformation(a: np.ndarray, b: np.ndarray) -> float:
    """Return how much frame ``b`` differs from frame ``a``, in grey levels (0-255).

    Both frames are area-averaged to a thumbnail of at most :data:`THUMBNAIL_SIDE` pixels
    (``b`` to ``a``'s thumbnail size), the channel-mean ``|b - a|`` taken per pixel, and the
    mean of the most changed :data:`TOP_SHARE` of pixels returned: a contact patch counts by
    its own depth, whatever its area; pixel noise mostly averages out.
    """
    h, w = a.shape[:2]
    s = min(1.0, THUMBNAIL_SIDE / max(h, w, 1))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    diff = np.abs(_thumbnail(b, size) - _thumbnail(a, size))  # h' x w' x C
    d = diff.mean(axis=-1).ravel() if diff.ndim == 3 else diff.ravel()
    k = max(1, int(d.size * TOP_SHARE))
    return float(np.partition(d, d.size - k)[d.size - k:].mean())


@dataclass(frozen=True)
class ContactEvidence:
    """The judge's answer for one closing.

    Attributes:
        contact: ``True`` / ``False``; ``None`` when it could not be told (a frame missing or
            undecodable): the gate decides such a closing, never dismisses it.
        source: what said so: ``holding``, ``effort``, ``frames`` (deformed), ``none`` (nothing
            did), ``not_required`` (``contact_required`` false), ``no_frame``, ``undecodable``.
        deformation: :func:`deformation` of Ta → the later frame (NaN where not measured).
        threshold: the deformation threshold it was compared with (NaN where not measured).

    """

    contact: bool | None
    source: str
    deformation: float = math.nan
    threshold: float = math.nan

    def summary(self) -> str:
        """Say it in a few words (diagnostics): e.g. ``frames 23.1 >= 8.4``, ``none 2.2 < 8.4``."""
        if math.isnan(self.deformation):
            return self.source
        op = ">=" if self.deformation >= self.threshold else "<"
        return f"{self.source} {self.deformation:.1f} {op} {self.threshold:.1f}"


class ContactJudge:
    """The contact rule of the module docstring, with its noise calibration (one per gate).

    Deterministic in the order of the closings it judges, so a node and a replay of the same
    messages judge alike.
    """

    def __init__(self, config: TriggerConfig, history: int = 9) -> None:
        self.config = config
        self._noise: deque[float] = deque(maxlen=history)
        self.judged = 0
        self.without_contact = 0
        self.last: ContactEvidence | None = None

    @property
    def noise(self) -> float:
        """The frame noise: lower quartile of the recent no-contact pairs' deformation (NaN before any)."""
        return sorted(self._noise)[len(self._noise) // 4] if self._noise else math.nan

    @property
    def threshold(self) -> float:
        """The deformation that counts as contact now."""
        cfg = self.config
        noise = self.noise
        return cfg.contact_min_deformation if math.isnan(noise) else max(
            cfg.contact_min_deformation, cfg.contact_noise_factor * noise)

    def judge(self, ta: Frame | None, later: Frame | None, before_ta: Frame | None = None,
              holding: bool = False, effort: float | None = None) -> ContactEvidence:
        """Tell whether the fingers touched something between Ta and ``later``.

        ``before_ta``: the frame before Ta (its difference to Ta is a noise sample);
        ``holding``: HOLDING was reported during the grasp; ``effort``: the latest effort.
        """
        ev = self._judge(ta, later, before_ta, holding, effort)
        self.judged += 1
        self.without_contact += ev.contact is False
        self.last = ev
        return ev

    def _judge(self, ta: Frame | None, later: Frame | None, before_ta: Frame | None, holding: bool,
               effort: float | None) -> ContactEvidence:
        cfg = self.config
        if not cfg.contact_required:
            return ContactEvidence(True, "not_required")
        if holding:
            return ContactEvidence(True, "holding")
        if cfg.contact_effort is not None and effort is not None and effort >= cfg.contact_effort:
            return ContactEvidence(True, "effort")
        if ta is None or later is None or later is ta:
            return ContactEvidence(None, "no_frame")
        try:
            a, b = ta.pixels(), later.pixels()
        except FrameError:
            return ContactEvidence(None, "undecodable")
        if before_ta is not None:
            with contextlib.suppress(FrameError):  # no noise sample from a bad frame
                self._noise.append(deformation(before_ta.pixels(), a))
        d, threshold = deformation(a, b), self.threshold
        return ContactEvidence(d >= threshold, "frames" if d >= threshold else "none", d, threshold)
