"""Decisions: a snapshot + a predictor → LIFT/ABORT, never LIFT on an error.

:class:`Decision` carries the fields of ``tactile_grasp_msgs/GraspDecision`` (the ROS
adapter fills the header). :func:`decide` runs the predictor on a
:class:`~tactile_grasp_predictor.gate.SnapshotReady`; :func:`abort_decision` turns a
:class:`~tactile_grasp_predictor.gate.GraspAborted` into an ABORT without a model. Both
leave the timing unstamped (``latency_ms`` NaN, ``t_decision`` the trigger time): the
:class:`~tactile_grasp_predictor.session.GraspSession` stamps every decision on one clock.

Example:
    >>> import numpy as np
    >>> from tactile_grasp_predictor.gate import Frame, SnapshotReady
    >>> class Half:
    ...     model_id = "half"
    ...     def predict(self, ta, tb):
    ...         return 0.5
    >>> img = np.zeros((2, 2, 3), np.uint8)
    >>> snap = SnapshotReady(1, Frame(0.0, None, img), Frame(1.0, 7.0, img), 1.0)
    >>> d = decide(snap, Half(), threshold=0.4)
    >>> (d.verdict.name, d.reason, d.p_success, d.ta_stamp, d.tb_stamp)
    ('LIFT', 'model', 0.5, 0.0, 7.0)

"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import numpy as np

from tactile_grasp_predictor.errors import BundleError, FrameError
from tactile_grasp_predictor.gate import Frame, GraspAborted, Reason, SnapshotReady


class Verdict(IntEnum):
    """The gate's answer (``GraspDecision.verdict``)."""

    ABORT = 0
    LIFT = 1


class Predicting(Protocol):
    """What :func:`decide` needs of a predictor (e.g. ``predictor.Predictor``)."""

    @property
    def model_id(self) -> str:
        """Identifier of the loaded model (recorded in every decision)."""
        ...

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        """p(success) from the RGB uint8 frames at Ta and Tb."""
        ...


@dataclass(frozen=True)
class Decision:
    """One grasp's decision: the fields of ``GraspDecision`` plus the decision time.

    ``ta_stamp``/``tb_stamp`` are the frames' header stamps, or their receive times
    where the header was empty, ``None`` where there was no such frame. ``p_success``
    is NaN where no model ran. ``latency_ms`` (Tb trigger → decision, NaN where no grasp
    was decided) and ``t_decision`` (core clock) are stamped by the session.
    """

    grasp_id: int
    verdict: Verdict
    p_success: float
    threshold: float
    ta_stamp: float | None
    tb_stamp: float | None
    latency_ms: float
    reason: str
    model_id: str
    t_decision: float


def frame_stamp(frame: Frame | None) -> float | None:
    """Return a frame's header stamp, its receive time if the stamp is empty, ``None`` without a frame."""
    if frame is None:
        return None
    return frame.stamp if frame.stamp is not None else frame.t


def _model_id(predictor: object) -> str:
    try:
        return str(getattr(predictor, "model_id", "") or "")
    except Exception:  # a property that raises must not crash the decision
        return ""


def decide(snapshot: SnapshotReady, predictor: Predicting | None, threshold: float) -> Decision:
    """Run the predictor on Ta/Tb and decide; any failure gives ABORT with its reason.

    LIFT only when ``p_success >= threshold`` with a finite ``p_success`` in [0, 1] and a
    threshold in [0, 1]. Reasons: ``model`` (the model decided), ``model_unavailable`` (no
    predictor, :class:`BundleError`), ``bad_threshold``, ``bad_frame`` (:class:`FrameError`,
    also from decoding an undecoded frame), ``model_error`` (any other exception, NaN or
    out-of-range p). The timing is left for the session to stamp.
    """
    model_id = _model_id(predictor) if predictor is not None else ""
    p = math.nan
    reason = Reason.MODEL
    thr_ok = isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0  # NaN fails both
    if predictor is None:
        reason = Reason.MODEL_UNAVAILABLE
    elif not thr_ok:
        reason = Reason.BAD_THRESHOLD
    else:
        try:
            p = float(predictor.predict(snapshot.ta.pixels(), snapshot.tb.pixels()))
        except FrameError:
            reason = Reason.BAD_FRAME
        except BundleError:
            reason = Reason.MODEL_UNAVAILABLE
        except Exception:  # the model must never crash the gate
            reason = Reason.MODEL_ERROR
        else:
            if not (0.0 <= p <= 1.0):  # NaN, inf or outside [0, 1]
                reason = Reason.MODEL_ERROR
    lift = reason == Reason.MODEL and p >= threshold
    return Decision(
        grasp_id=snapshot.grasp_id,
        verdict=Verdict.LIFT if lift else Verdict.ABORT,
        p_success=p,
        threshold=float(threshold) if isinstance(threshold, (int, float)) else math.nan,
        ta_stamp=frame_stamp(snapshot.ta),
        tb_stamp=frame_stamp(snapshot.tb),
        latency_ms=math.nan,
        reason=reason,
        model_id=model_id,
        t_decision=snapshot.t_trigger,
    )


def abort_decision(event: GraspAborted, threshold: float, model_id: str = "") -> Decision:
    """ABORT for a grasp the gate ended without the model (``p_success`` NaN; timing unstamped)."""
    return Decision(
        grasp_id=event.grasp_id,
        verdict=Verdict.ABORT,
        p_success=math.nan,
        threshold=float(threshold),
        ta_stamp=frame_stamp(event.ta),
        tb_stamp=frame_stamp(event.tb),
        latency_ms=math.nan,
        reason=event.reason,
        model_id=model_id,
        t_decision=event.t,
    )
