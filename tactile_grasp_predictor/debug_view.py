"""The debug view of a decision: what the node saw and what it said, as one RGB image (no ROS).

``predictor_node`` publishes it on ``~/debug_image`` (``debug_image: true``) while someone
watches (rqt_image_view, Foxglove): Ta, Tb and their difference amplified, side by side, with
the grasp id, verdict, p against the threshold and the reason written underneath; a second
row shows the right finger where the node has it. A missing frame (an ABORT before Tb) is a
grey panel saying so.

Example:
    >>> import numpy as np
    >>> ta = np.full((48, 64, 3), 100, np.uint8)
    >>> tb = ta.copy(); tb[10:20, 10:30] = 160
    >>> img = render_decision(ta, tb, grasp_id=3, lift=True, p=0.81, threshold=0.5, reason="model")
    >>> img.shape, img.dtype
    ((176, 576, 3), dtype('uint8'))

"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

#: How much the difference panel amplifies |Tb - Ta| (contact signals are a few grey levels).
GAIN = 4.0
PANEL_H = 144  # each panel's height in pixels; widths keep the frame's aspect ratio
TEXT_H = 32
_LIFT = (40, 170, 60)  # RGB
_ABORT = (210, 50, 40)
_GREY = (90, 90, 90)


def _panel(img: np.ndarray | None, width: int, label: str) -> np.ndarray:
    """Resize ``img`` to ``PANEL_H x width`` (grey with ``label`` where missing)."""
    import cv2

    if img is not None and img.shape[:2] == (PANEL_H, width):
        return img
    if img is None:
        out = np.full((PANEL_H, width, 3), _GREY, np.uint8)
        cv2.putText(out, label, (8, PANEL_H // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1,
                    cv2.LINE_AA)
        return out
    img = np.ascontiguousarray(img)  # a BGR view of a message buffer has negative strides
    return np.ascontiguousarray(cv2.resize(img, (width, PANEL_H), interpolation=cv2.INTER_AREA))


def difference(ta: np.ndarray, tb: np.ndarray, gain: float = GAIN) -> np.ndarray:
    """Return ``|Tb - Ta| * gain`` as RGB uint8 (clipped); the frames must have one shape."""
    d = np.abs(tb.astype(np.int16) - ta.astype(np.int16)).astype(np.float32) * gain
    return np.clip(d, 0, 255).astype(np.uint8)


def _row(ta: np.ndarray | None, tb: np.ndarray | None, width: int, finger: str) -> np.ndarray:
    a, b = _panel(ta, width, f"{finger}: no Ta"), _panel(tb, width, f"{finger}: no Tb")
    # the difference of the resized panels: a few ms less than resizing the full-size difference
    diff = difference(a, b) if ta is not None and tb is not None and ta.shape == tb.shape else None
    return np.concatenate([a, b, _panel(diff, width, "no difference")], axis=1)


Pair = tuple[np.ndarray | None, np.ndarray | None]  # (Ta, Tb), either may be missing


def render_decision(ta: np.ndarray | None, tb: np.ndarray | None, *, grasp_id: int, lift: bool, p: float,
                    threshold: float, reason: str, right: Pair | None = None) -> np.ndarray:
    """Draw one decision: Ta | Tb | amplified difference (left, then ``right`` if given) over a caption."""
    import cv2

    ref = tb if tb is not None else ta
    width = PANEL_H * 4 // 3 if ref is None else max(16, round(PANEL_H * ref.shape[1] / ref.shape[0]))
    rows = [_row(ta, tb, width, "left")]
    if right is not None:
        rows.append(_row(right[0], right[1], width, "right"))
    caption = np.full((TEXT_H, rows[0].shape[1], 3), _LIFT if lift else _ABORT, np.uint8)
    p_text = "p = n/a" if p is None or math.isnan(p) else f"p = {p:.3f} {'>=' if p >= threshold else '<'} " \
        f"{threshold:.3f}"
    text = f"grasp {grasp_id}  {'LIFT' if lift else 'ABORT'}  {p_text}  ({reason})"
    scale = 0.55
    text_w = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    scale *= min(1.0, (caption.shape[1] - 16) / max(1, text_w))  # fit the width
    cv2.putText(caption, text, (8, TEXT_H - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([*rows, caption], axis=0))


class RecentFrames:
    """The last few frames of a stream with their times, to find the one nearest a given time."""

    def __init__(self, size: int = 64) -> None:
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=size)

    def add(self, t: float, img: np.ndarray) -> None:
        """Keep ``img`` taken at time ``t``."""
        self._frames.append((t, img))

    def nearest(self, t: float | None, max_gap_s: float = 0.5) -> np.ndarray | None:
        """Return the frame nearest ``t`` if one lies within ``max_gap_s`` (else ``None``)."""
        if t is None or not self._frames:
            return None
        dt, img = min(((abs(ft - t), f) for ft, f in self._frames), key=lambda x: x[0])
        return img if dt <= max_gap_s else None
