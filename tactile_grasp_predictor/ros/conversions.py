"""ROS messages ⇄ the core's plain types (stamps, images, joint states, decisions).

The core never sees a message: times are float seconds, images RGB uint8 ``H x W x 3``
arrays, gripper input :class:`~tactile_grasp_predictor.gripper.GripperSample`.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import Image, JointState
from tactile_grasp_msgs.msg import GraspDecision

from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.errors import FrameError
from tactile_grasp_predictor.image_codec import decode_image, encode_image
from tactile_grasp_predictor.session import Health

#: Encodings decoded as views of the message buffer when rows are unpadded.
_VIEWABLE = ("rgb8", "bgr8", "8UC3")


def stamp_to_float(stamp: Time) -> float | None:
    """Seconds of a header stamp; ``None`` for the empty (zero) stamp many drivers send."""
    if stamp.sec == 0 and stamp.nanosec == 0:
        return None
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def float_to_stamp(t: float | None) -> Time:
    """Return a ``builtin_interfaces/Time`` from seconds (zero for ``None`` or non-finite values)."""
    if t is None or not math.isfinite(t) or t <= 0.0:
        return Time()
    ns = round(t * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def image_to_rgb(msg: Image, accepted: tuple[str, ...], topic: str = "image") -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` to RGB uint8 ``H x W x 3`` (a view where possible).

    Raises:
        FrameError: naming the topic and the field, for an encoding not in ``accepted``
            or a message whose size, step or data length do not agree.

    """
    if msg.encoding not in accepted:
        raise FrameError(f"{topic}: encoding {msg.encoding!r} not accepted (allowed: {', '.join(accepted)})")
    data = np.frombuffer(msg.data, dtype=np.uint8)  # zero-copy view of the message buffer
    h, w = int(msg.height), int(msg.width)
    if msg.encoding in _VIEWABLE and msg.step == 3 * w and data.size == 3 * w * h and h > 0 and w > 0:
        # Unpadded 3-channel frames: a view, no copy (most frames are never Ta/Tb; the
        # preprocessing copies the two that are). The view keeps the message buffer alive.
        rgb = data.reshape(h, w, 3)  # H x W x 3
        return rgb if msg.encoding == "rgb8" else rgb[:, :, ::-1]
    try:
        return decode_image(msg.encoding, msg.height, msg.width, msg.step, data, msg.is_bigendian)
    except FrameError as exc:
        raise FrameError(f"{topic}: {exc}") from exc


def rgb_to_image(rgb: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """Encode an RGB uint8 array as a ``sensor_msgs/Image`` in ``encoding``, as a camera driver does."""
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, rgb.shape
    step, data = encode_image(rgb, encoding)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(step)
    msg.data = bytes(data)
    return msg


def finger_joint_state(width_m: float, stamp: Time, names: tuple[str, str]) -> JointState:
    """Build a JointState the WSG-50 way: two finger joints at ∓width/2 metres."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [-0.5 * width_m, 0.5 * width_m]
    return msg


def decision_to_msg(decision: Decision, frame_id: str, stamp: Time) -> GraspDecision:
    """Convert a core :class:`Decision` to a ``GraspDecision`` (LIFT only if the core said so)."""
    msg = GraspDecision()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.grasp_id = int(decision.grasp_id) & 0xFFFFFFFF
    msg.verdict = GraspDecision.LIFT if decision.verdict == Verdict.LIFT else GraspDecision.ABORT
    msg.p_success = float(decision.p_success) if decision.p_success is not None else math.nan
    msg.threshold = float(decision.threshold) if decision.threshold is not None else math.nan
    msg.ta_stamp = float_to_stamp(decision.ta_stamp)
    msg.tb_stamp = float_to_stamp(decision.tb_stamp)
    msg.latency_ms = float(decision.latency_ms) if decision.latency_ms is not None else math.nan
    msg.reason = str(decision.reason)
    msg.model_id = str(decision.model_id or "")
    return msg


_LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


def health_to_msg(health: Health, name: str, hardware_id: str, stamp: Time) -> DiagnosticArray:
    """Convert the session's :class:`Health` to a one-status ``DiagnosticArray``."""
    status = DiagnosticStatus(level=_LEVELS[health.level], name=name, message=health.message,
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=k, value=v) for k, v in health.values.items()]
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
